/** `promise`, or a rejection naming what did not answer once `ms` have passed (the timer is always cleared). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what = 'no answer'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
