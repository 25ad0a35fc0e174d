import { classifyAddress, EgressDeniedError, EgressPolicy } from './egress.policy.js';

describe('egress policy', () => {
  it('classifies metadata, link-local and reserved addresses as forbidden', () => {
    for (const a of [
      '169.254.169.254',
      '169.254.0.1',
      '100.100.100.200',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      'fe80::1',
      'fe80::1%eth0',
      'fd00:ec2::254',
      '::',
      'ff02::1',
    ]) {
      expect([a, classifyAddress(a)]).toEqual([a, 'forbidden']);
    }
    // IPv4 inside IPv6 is judged as the IPv4 address.
    for (const a of ['::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::169.254.169.254', '[::ffff:169.254.169.254]']) {
      expect([a, classifyAddress(a)]).toEqual([a, 'forbidden']);
    }
    expect(classifyAddress('not an ip')).toBe('forbidden');
  });

  it('classifies loopback and private ranges as private, the rest as public', () => {
    for (const a of [
      '127.0.0.1',
      '127.8.9.10',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      '::1',
      'fd12:3456::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
    ]) {
      expect([a, classifyAddress(a)]).toEqual([a, 'private']);
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111']) {
      expect([a, classifyAddress(a)]).toEqual([a, 'public']);
    }
  });

  it('refuses private addresses unless allowed, forbidden ones always, and a name if any address is refused', () => {
    const closed = new EgressPolicy({ allowPrivateNetworks: false });
    const open = new EgressPolicy({ allowPrivateNetworks: true });
    expect(closed.refusal('10.0.0.1')).toMatch(/MCP_ALLOW_PRIVATE_NETWORKS/);
    expect(open.refusal('10.0.0.1')).toBeUndefined();
    expect(open.refusal('169.254.169.254')).toMatch(/never/);
    expect(() => open.assertAddresses('rebind.test', ['127.0.0.1', '169.254.169.254'])).toThrow(EgressDeniedError);
    expect(() => open.assertAddresses('empty.test', [])).toThrow(EgressDeniedError);
    expect(() => open.assertAddresses('ok.test', ['127.0.0.1', '93.184.216.34'])).not.toThrow();
  });

  it('judges URLs by their literal host at registration (names wait for connect time)', () => {
    const closed = new EgressPolicy({ allowPrivateNetworks: false });
    const open = new EgressPolicy({ allowPrivateNetworks: true });
    expect(open.urlRefusal('http://169.254.169.254/latest/meta-data')).toMatch(/never/);
    expect(open.urlRefusal('http://[fd00:ec2::254]/')).toMatch(/never/);
    expect(open.urlRefusal('http://[::ffff:169.254.169.254]/')).toMatch(/never/);
    expect(open.urlRefusal('http://0xa9fea9fe/')).toMatch(/never/); // the URL parser normalizes it to 169.254.169.254
    expect(open.urlRefusal('http://metadata.google.internal/computeMetadata/v1/')).toMatch(/metadata/);
    expect(open.urlRefusal('http://127.0.0.1:8080/mcp')).toBeUndefined();
    expect(closed.urlRefusal('http://127.0.0.1:8080/mcp')).toMatch(/MCP_ALLOW_PRIVATE_NETWORKS/);
    expect(closed.urlRefusal('http://localhost:8080/mcp')).toMatch(/MCP_ALLOW_PRIVATE_NETWORKS/);
    expect(closed.urlRefusal('https://mcp.example.com/github')).toBeUndefined();
  });
});
