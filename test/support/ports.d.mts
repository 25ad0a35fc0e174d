/** A TCP port nothing listens on right now: the kernel's pick for port 0, released at once. */
export function freePort(host?: string): Promise<number>;
/** Whether something accepts TCP connections on host:port now. */
export function portOpen(port: number, host?: string): Promise<boolean>;
/** Resolves once host:port accepts connections; rejects after `timeoutMs`. */
export function waitForPort(port: number, timeoutMs: number, host?: string): Promise<void>;
