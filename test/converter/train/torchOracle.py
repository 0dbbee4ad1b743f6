# PyTorch side of torch.test.ts: rebuilds each factor layer's dense weight from its factors by
# einsum (the formulas of runtime/ir.ts and of the reshaped methods' paper, independent of the
# TypeScript contraction order), runs the
# same tiny model in float64 and prints the loss, every parameter gradient and the BN running stats.
import json
import sys

import torch
import torch.nn.functional as F

d = json.load(open(sys.argv[1]))
P = {k: torch.tensor(v['data'], dtype=torch.float64).reshape(v['shape']).requires_grad_() for k, v in d['params'].items()}
x = P['x']
labels = torch.tensor(d['labels'], dtype=torch.long)


def tt_weight(prefix, d_cores, out, inn):
    # W[(i..), (j..)] = trace(G_0[:, i_0, j_0, :] ... G_{d-1}[:, ...]); boundary ranks 1 for TT.
    letters_m, letters_n, letters_r = 'abcdef', 'ghijkl', 'pqrstu'
    terms = []
    for k in range(d_cores):
        r_next = letters_r[(k + 1) % d_cores]
        terms.append(letters_r[k] + letters_m[k] + letters_n[k] + r_next)
    spec = ','.join(terms) + '->' + letters_m[:d_cores] + letters_n[:d_cores]
    w = torch.einsum(spec, *[P[f'{prefix}.core.{k}'] for k in range(d_cores)])
    return w.reshape(out, inn)


def reshaped_weight(spec):
    # Tensorial Neural Networks (Su, Huang et al.): W [T1..TM, S1..SM, kh, kw] from the factors
    #   rcp  sum_r F0[r,h,w] prod_m Fm[r,t_m,s_m]
    #   rtk  sum_{r0..rM} C[r0..rM] F0[r0,h,w] prod_m Fm[r_m,t_m,s_m]
    #   rtt  F1[r1,t1,s1] F2[r1,r2,t2,s2] .. FM[r_{M-1},r_M,tM,sM] F0[r_M,h,w]
    #   rtr  F1[r0,r1,t1,s1] .. FM[r_{M-1},r_M,tM,sM] F0[r_M,r0,h,w]
    # then reshaped row-major to [T, S, kh, kw].
    pre, method, t, s = spec['prefix'], spec['method'], spec['tModes'], spec['sModes']
    M = len(t)
    tl, sl, rl = 'abc'[:M], 'efg'[:M], 'ijkl'
    f = [P[f'{pre}.factor.{m}'] for m in range(M + 1)]
    if method == 'rcp':
        terms = ['rhw'] + [f'r{tl[m]}{sl[m]}' for m in range(M)]
        ops = f
    elif method == 'rtk':
        terms = ['ihw'] + [f'{rl[m + 1]}{tl[m]}{sl[m]}' for m in range(M)] + [rl[:M + 1]]
        ops = f + [P[f'{pre}.core']]
    elif method == 'rtt':
        terms = [rl[M] + 'hw'] + [(rl[m] if m > 0 else '') + f'{rl[m + 1]}{tl[m]}{sl[m]}' for m in range(M)]
        ops = f
    else:
        terms = [rl[M] + rl[0] + 'hw'] + [f'{rl[m]}{rl[m + 1]}{tl[m]}{sl[m]}' for m in range(M)]
        ops = f
    w = torch.einsum(','.join(terms) + '->' + tl + sl + 'hw', *ops)
    T = 1
    for v in t:
        T *= v
    return w.reshape(T, -1, w.shape[-2], w.shape[-1])


def reshaped_apply(spec, h):
    w = reshaped_weight(spec)
    b = P[spec['prefix'] + '.bias']
    c = spec['conv']
    if c is None:
        return h @ w.reshape(w.shape[0], w.shape[1]).T + b
    pt, pl, pb, pr = c['pads']
    return F.conv2d(F.pad(h, (pl, pr, pt, pb)), w, b, stride=tuple(c['strides']), dilation=tuple(c['dilations']))


def adtn_weight(prefix, spec):
    # The circuit's state by its definition (runtime/ir.ts adtn_dense): the Kronecker product of the
    # Q start vectors, then each gate G at index p on the state seen as [2^p, D, 2^(Q-p-k)]; W is the head.
    st, g = P[prefix + '.start'], P[prefix + '.gates']
    q, k, n = st.shape[0], spec['arity'], spec['rows'] * spec['cols']
    s = st[0]
    for j in range(1, q):
        s = torch.kron(s, st[j])
    gi = 0
    for m in range(spec['depth']):
        p = m % k if spec['pairing'] == 'brickwall' else 0
        while p + k <= q:
            s = torch.einsum('gh,ahb->agb', g[gi], s.reshape(2 ** p, 2 ** k, 2 ** (q - p - k))).reshape(-1)
            gi += 1
            p += k
    return s[:n].reshape(spec['rows'], spec['cols'])


extra = {}
L = {spec['prefix']: spec for spec in d.get('layers', [])}
if d['model'] == 'f':
    c = L['ac']
    w = adtn_weight('ac', c).reshape(c['shape'])
    h = torch.tanh(F.conv2d(x, w, P['ac.bias'], stride=2, padding=1)).flatten(1)
    logits = h @ adtn_weight('ad', L['ad']).T + P['ad.bias']
    loss = F.cross_entropy(logits, labels)
elif d['model'] == 'd':
    h = reshaped_apply(L['rtk'], torch.tanh(reshaped_apply(L['rcp'], x))).flatten(1)
    logits = reshaped_apply(L['rtr'], torch.sigmoid(reshaped_apply(L['rtt'], h)))
    loss = F.cross_entropy(logits, labels)
elif d['model'] == 'e':
    h = reshaped_apply(L['rtr'], torch.tanh(reshaped_apply(L['rtt'], x))).flatten(1)
    logits = reshaped_apply(L['rtk'], torch.tanh(reshaped_apply(L['rcp'], h)))
    loss = F.cross_entropy(logits, labels)
elif d['model'] == 'a':
    h = F.conv2d(x, P['conv.weight'], None, padding=1)
    rm = torch.zeros(3, dtype=torch.float64)
    rv = torch.ones(3, dtype=torch.float64)
    h = F.batch_norm(h, rm, rv, P['bn.gamma'], P['bn.beta'], training=True, momentum=0.1, eps=1e-5)
    extra = {'running_mean': rm.tolist(), 'running_var': rv.tolist()}
    h = F.max_pool2d(F.relu(h), 2).flatten(1)
    h = F.gelu(h @ tt_weight('tt', 3, 12, 48).T + P['tt.bias'])
    logits = h @ (P['svd.u'] @ P['svd.v']).T + P['svd.bias']
    T = 2.0
    teacher = torch.tensor(d['teacher'], dtype=torch.float64).reshape(logits.shape)
    kl = F.kl_div(F.log_softmax(logits / T, 1), F.softmax(teacher / T, 1), reduction='batchmean') * T * T
    loss = F.cross_entropy(logits, labels) + 0.5 * kl
elif d['model'] == 'c':
    # flexact: z = x v^T; each branch a polynomial, continued along its tangent beyond [lo, hi].
    rg = torch.tensor(d['range'], dtype=torch.float64).reshape(-1, 2)
    z = torch.tanh(x) @ P['fx.v'].T
    e = torch.maximum(torch.minimum(z, rg[:, 1]), rg[:, 0])
    c = P['fx.coeffs']
    g = sum(c[:, k] * e ** (k + 1) for k in range(c.shape[1]))
    slope = sum((k + 1) * c[:, k] * e ** k for k in range(c.shape[1]))
    logits = (g + slope * (z - e)) @ P['fx.w'].T + P['fx.bias']
    loss = F.cross_entropy(logits, labels)
else:
    w_cp = torch.einsum('or,ri,ry,rx->oiyx', P['cp.a_out'], P['cp.a_in'], P['cp.k_h'], P['cp.k_w'])
    h = torch.tanh(F.conv2d(x, w_cp, P['cp.bias'], padding=1))
    w_tk = torch.einsum('ob,bayx,ai->oiyx', P['tk.u_out'], P['tk.core'], P['tk.u_in'])
    h = F.conv2d(h, w_tk, P['tk.bias'], stride=2, padding=1)
    h = F.avg_pool2d(h, 2).flatten(1)
    w_ttl = torch.einsum('abcd,ia,jb,kc,ld->ijkl', P['ttl.core'], P['ttl.factor.0'], P['ttl.factor.1'], P['ttl.factor.2'], P['ttl.factor.3'])
    h = torch.sigmoid(h @ w_ttl.reshape(6, 20).T + P['ttl.bias'])
    logits = h @ tt_weight('tr', 2, 4, 6).T + P['tr.bias']
    loss = F.cross_entropy(logits, labels)

loss.backward()
print(json.dumps({'loss': loss.item(), 'grads': {k: v.grad.flatten().tolist() for k, v in P.items()}, **extra}))
