import { BlockList, isIP } from 'node:net';

/**
 * Where the service may open outbound connections to MCP servers (health
 * probes, the gateway). The decision is made on the resolved IP address at
 * connect time (see `egress.dispatcher.ts`), so a name that resolves to a
 * forbidden address — or re-resolves to one later (DNS rebinding) — is
 * refused whatever it looked like when it was registered.
 *
 * - `forbidden`: never, whatever the settings: link-local (169.254.0.0/16,
 *   fe80::/10) where every cloud's metadata service lives (169.254.169.254,
 *   fd00:ec2::254, Alibaba's 100.100.100.200), "this host" (0.0.0.0/8, ::),
 *   multicast, broadcast and reserved ranges.
 * - `private`: loopback (127.0.0.0/8, ::1), RFC 1918, CGNAT 100.64.0.0/10,
 *   unique-local fc00::/7 and similar: allowed only with
 *   MCP_ALLOW_PRIVATE_NETWORKS (on by default in the embedded developer mode,
 *   off with NODE_ENV=production).
 * - `public`: everything else.
 * IPv4 embedded in IPv6 (::ffff:a.b.c.d, 64:ff9b::a.b.c.d, ::a.b.c.d) is judged as that IPv4 address.
 */
export type AddressClass = 'forbidden' | 'private' | 'public';

const FORBIDDEN = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network": 0.0.0.0 reaches the local host on Linux
  ['169.254.0.0', 16], // link-local: cloud metadata (AWS, GCP, Azure, OCI …)
  ['100.100.100.200', 32], // Alibaba Cloud metadata
  ['192.0.0.0', 24], // IETF protocol assignments (incl. 192.0.0.192, OCI metadata)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
] as const) {
  FORBIDDEN.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['fe80::', 10], // link-local
  ['fd00:ec2::254', 128], // AWS metadata over IPv6
  ['ff00::', 8], // multicast
  ['100::', 64], // discard-only
] as const) {
  FORBIDDEN.addSubnet(net, prefix, 'ipv6');
}

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['127.0.0.0', 8],
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['198.18.0.0', 15], // benchmarking
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::1', 128],
  ['fc00::', 7], // unique local
  ['fec0::', 10], // deprecated site-local
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address an IPv6 address carries (mapped, NAT64, IPv4-compatible), if any. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::|::)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return undefined;
}

/** Classifies an IP address literal; anything that is not one is `forbidden`. */
export function classifyAddress(address: string): AddressClass {
  let ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const zone = ip.indexOf('%');
  if (zone !== -1) ip = ip.slice(0, zone); // fe80::1%eth0
  const family = isIP(ip);
  if (family === 0) return 'forbidden';
  if (family === 6) {
    const v4 = embeddedIpv4(ip);
    if (v4 !== undefined && isIP(v4) === 4) return classifyAddress(v4);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (FORBIDDEN.check(ip, type)) return 'forbidden';
  if (PRIVATE.check(ip, type)) return 'private';
  return 'public';
}

/** Names that mean a metadata service or this host, refused at registration before any DNS. */
const FORBIDDEN_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);
const LOOPBACK_NAMES = /^(localhost|localhost\.localdomain|ip6-localhost|ip6-loopback)$|\.localhost$/;

export class EgressDeniedError extends Error {
  readonly code = 'EEGRESSDENIED';
  constructor(
    readonly host: string,
    readonly address: string | undefined,
    readonly reason: string,
  ) {
    super(`egress to ${host}${address && address !== host ? ` (${address})` : ''} refused: ${reason}`);
    this.name = 'EgressDeniedError';
  }
}

export interface EgressPolicyOptions {
  /** MCP_ALLOW_PRIVATE_NETWORKS */
  readonly allowPrivateNetworks: boolean;
}

/** The decision, for addresses (connect time) and for URLs as registered. */
export class EgressPolicy {
  constructor(readonly options: EgressPolicyOptions) {}

  /** Why connecting to `address` is refused, or undefined when it is allowed. */
  refusal(address: string): string | undefined {
    const cls = classifyAddress(address);
    if (cls === 'forbidden') return 'link-local, metadata, multicast or reserved addresses are never allowed';
    if (cls === 'private' && !this.options.allowPrivateNetworks) return 'private and loopback addresses need MCP_ALLOW_PRIVATE_NETWORKS=true';
    return undefined;
  }

  /** Throws EgressDeniedError unless every address is allowed (one bad record refuses the name). */
  assertAddresses(host: string, addresses: readonly string[]): void {
    if (addresses.length === 0) throw new EgressDeniedError(host, undefined, 'the name resolved to no address');
    for (const address of addresses) {
      const reason = this.refusal(address);
      if (reason) throw new EgressDeniedError(host, address, reason);
    }
  }

  /**
   * The check at registration time, on the URL's literal host (no DNS: a
   * name is judged when it is connected to). Returns why the URL is refused.
   */
  urlRefusal(url: string): string | undefined {
    let host: string;
    try {
      host = new URL(url).hostname.toLowerCase();
    } catch {
      return 'is not a URL';
    }
    const bare = host.startsWith('[') ? host.slice(1, -1) : host.replace(/\.$/, '');
    if (isIP(bare) !== 0) {
      const reason = this.refusal(bare);
      return reason ? `must not point at ${bare}: ${reason}` : undefined;
    }
    if (FORBIDDEN_NAMES.has(bare)) return `must not point at ${bare}: cloud metadata services are never allowed`;
    if (LOOPBACK_NAMES.test(bare) && !this.options.allowPrivateNetworks) {
      return `must not point at ${bare}: loopback needs MCP_ALLOW_PRIVATE_NETWORKS=true`;
    }
    return undefined;
  }
}
