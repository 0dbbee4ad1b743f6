// Typed access to ONNX node attributes.

import onnxProto from 'onnx-proto';
import { OnnxImportError } from './errors.js';
import { toNum } from './tensors.js';

type INodeProto = onnxProto.onnx.INodeProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

export function findAttr(node: INodeProto, name: string): IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: INodeProto, name: string, fallback: number): number {
  const a = findAttr(node, name);
  return a ? toNum(a.i) : fallback;
}

export function attrFloat(node: INodeProto, name: string, fallback: number): number {
  const a = findAttr(node, name);
  return a && a.f !== null && a.f !== undefined ? a.f : fallback;
}

export function attrInts(node: INodeProto, name: string): number[] | undefined {
  const a = findAttr(node, name);
  return a ? (a.ints ?? []).map(toNum) : undefined;
}

export function attrString(node: INodeProto, name: string, fallback: string): string {
  const a = findAttr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : fallback;
}

/** Throws ONNX_UNSUPPORTED_ATTR when an attribute is present with a value other than `allowed`. */
export function requireAttr(node: INodeProto, name: string, allowed: number, where: string): void {
  const a = findAttr(node, name);
  if (a && toNum(a.i) !== allowed) {
    throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${where}: ${name}=${toNum(a.i)} is not supported (only ${allowed})`);
  }
}
