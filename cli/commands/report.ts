export async function reportCommand(_i: string[], _o: unknown): Promise<void> {}
