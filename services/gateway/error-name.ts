/**
 * What the gateway logs of a failed call. The class and code only: RPC and socket error
 * messages may quote the request (a header, a URL), and logs must never hold a secret.
 */
export function errorName(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code === undefined ? err.name : `${err.name}(${String(code)})`;
  }
  return typeof err;
}
