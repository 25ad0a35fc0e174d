import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';

/**
 * The compose stack, the image and the nginx front, checked offline (there is
 * no Docker engine on the development machines, so nothing is built or
 * started): `docker-compose config -q` and `nginx -t` when those tools are
 * installed (.ci/run installs them; skipped otherwise), and the structure the
 * service relies on: three replicas with the right env, health-gated
 * depends_on, postgres/redis healthchecks, the Dockerfile's stages, non-root
 * USER, HEALTHCHECK, STOPSIGNAL and CMD, .dockerignore, and nginx upstreams
 * that list exactly the compose replicas with the SSE/WebSocket settings.
 * Each check lists every problem it finds.
 */

const root = process.cwd();
const read = (rel: string): string => readFileSync(path.join(root, rel), 'utf8');

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
const nginxBinary = has('nginx') ? 'nginx' : existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined;

type Service = {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  environment?: Record<string, string> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  stop_grace_period?: string;
  healthcheck?: { test?: unknown };
  volumes?: string[];
  ports?: string[];
};
type Compose = { version?: unknown; services?: Record<string, Service>; volumes?: Record<string, unknown> };

const envMap = (env: Service['environment']): Record<string, string> => {
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e) => {
        const i = String(e).indexOf('=');
        return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
      }),
    );
  }
  return env ?? {};
};
const dependsOn = (d: Service['depends_on']): Record<string, { condition?: string }> =>
  Array.isArray(d) ? Object.fromEntries(d.map((n) => [n, {}])) : (d ?? {});

describe('deployment files', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
  const services = compose?.services ?? {};
  const registryNames = Object.keys(services)
    .filter((n) => /^registry-\d+$/.test(n))
    .sort();

  (has('docker-compose') ? it : it.skip)('docker-compose config -q accepts docker-compose.yml', () => {
    // Dummy values for the variables the compose file requires (${VAR:?...}).
    const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, BOOTSTRAP_ADMIN_KEY: 'validate-dummy-admin-key', SECRET_KEY: 'validate-dummy-secret-key-0123456789abcdef' },
    });
    expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  it('docker-compose.yml is a mapping of services (no obsolete version key)', () => {
    const p: string[] = [];
    if (!compose || typeof compose !== 'object') p.push('not a mapping');
    else {
      if ('version' in compose) p.push('obsolete top-level "version:" key');
      if (!compose.services || typeof compose.services !== 'object') p.push('no services');
    }
    expect(p).toEqual([]);
  });

  it('compose: three registry services (registry-1..3), built from ./Dockerfile', () => {
    const p: string[] = [];
    const want = ['registry-1', 'registry-2', 'registry-3'];
    if (JSON.stringify(registryNames) !== JSON.stringify(want)) p.push(`found [${registryNames.join(', ')}]`);
    for (const n of want) {
      const b = services[n]?.build;
      const df = typeof b === 'string' ? 'Dockerfile' : (b?.dockerfile ?? 'Dockerfile');
      const ctx = typeof b === 'string' ? b : b?.context;
      if (!b) p.push(`${n}: no build`);
      else if (ctx !== '.' || df !== 'Dockerfile') p.push(`${n}: build is not ./Dockerfile`);
    }
    expect(p).toEqual([]);
  });

  it('compose: registry env (DATABASE_URL->postgres, REDIS_URL->redis, secrets required)', () => {
    const p: string[] = [];
    for (const n of registryNames) {
      const env = envMap(services[n].environment);
      if (!/^postgres(ql)?:\/\/.*@postgres(:\d+)?\//.test(env.DATABASE_URL ?? '')) p.push(`${n}: DATABASE_URL must point at service postgres`);
      if (!/^rediss?:\/\/(.*@)?redis(:\d+)?(\/|$)/.test(env.REDIS_URL ?? '')) p.push(`${n}: REDIS_URL must point at service redis`);
      for (const k of ['BOOTSTRAP_ADMIN_KEY', 'SECRET_KEY']) {
        if (!new RegExp(`\\$\\{${k}(:?\\?|:-)`).test(String(env[k] ?? ''))) p.push(`${n}: ${k} must come from \${${k}:?...}`);
      }
      if (String(env.HOST ?? '') !== '0.0.0.0') p.push(`${n}: HOST must be 0.0.0.0`);
    }
    expect(p).toEqual([]);
  });

  it('compose: registry depends_on postgres+redis healthy, stop_grace_period, healthcheck', () => {
    const p: string[] = [];
    for (const n of registryNames) {
      const s = services[n];
      const d = dependsOn(s.depends_on);
      for (const dep of ['postgres', 'redis']) {
        if (d[dep]?.condition !== 'service_healthy') p.push(`${n}: depends_on ${dep} not service_healthy`);
      }
      const g = String(s.stop_grace_period ?? '');
      const secs = /^(\d+)s$/.test(g) ? Number(g.slice(0, -1)) : /^(\d+)m$/.test(g) ? 60 * Number(g.slice(0, -1)) : 0;
      if (secs < 26) p.push(`${n}: stop_grace_period "${g}" must exceed SHUTDOWN_GRACE_MS (25s)`);
      const t = JSON.stringify(s.healthcheck?.test ?? '');
      if (!t.includes('/healthz')) p.push(`${n}: healthcheck does not probe /healthz`);
    }
    expect(p).toEqual([]);
  });

  it('compose: postgres and redis with healthchecks (pg_isready, redis-cli ping)', () => {
    const p: string[] = [];
    const pg = services.postgres;
    const rd = services.redis;
    if (!pg) p.push('no postgres service');
    else {
      if (!/^postgres:(1[78])/.test(pg.image ?? '')) p.push(`postgres image "${pg.image}"`);
      if (!JSON.stringify(pg.healthcheck?.test ?? '').includes('pg_isready')) p.push('postgres healthcheck lacks pg_isready');
      const vols = (pg.volumes ?? []).map(String);
      const named = vols.find((v) => /^[A-Za-z0-9][\w.-]*:\/var\/lib\/postgresql/.test(v));
      if (!named) p.push('postgres has no named data volume');
      else {
        const [vname, target] = named.split(':');
        if (!compose.volumes || !(vname in compose.volumes)) p.push(`volume "${vname}" not declared under top-level volumes`);
        if (/^postgres:18/.test(pg.image ?? '') && target !== '/var/lib/postgresql') p.push('postgres:18 volume must mount at /var/lib/postgresql');
      }
    }
    if (!rd) p.push('no redis service');
    else {
      if (!/^redis:7/.test(rd.image ?? '')) p.push(`redis image "${rd.image}"`);
      if (!/redis-cli.*ping/.test(JSON.stringify(rd.healthcheck?.test ?? ''))) p.push('redis healthcheck lacks redis-cli ping');
    }
    expect(p).toEqual([]);
  });

  it('compose: nginx publishes 8080:80 with nginx.conf mounted read-only', () => {
    const p: string[] = [];
    const ng = services.nginx;
    if (!ng) p.push('no nginx service');
    else {
      if (!/^nginx:/.test(ng.image ?? '')) p.push(`nginx image "${ng.image}"`);
      if (!(ng.ports ?? []).map(String).some((x) => /^(\d+\.\d+\.\d+\.\d+:)?8080:80$/.test(x))) p.push('port 8080:80 not published');
      if (!(ng.volumes ?? []).map(String).includes('./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro')) p.push('nginx.conf not mounted :ro');
      const d = dependsOn(ng.depends_on);
      for (const n of registryNames) if (!(n in d)) p.push(`nginx does not depend on ${n}`);
    }
    if (!existsSync(path.join(root, 'deploy/nginx/nginx.conf'))) p.push('deploy/nginx/nginx.conf missing');
    expect(p).toEqual([]);
  });

  it('Dockerfile: two node:24 stages, npm ci / build / --omit=dev, non-root USER', () => {
    const p: string[] = [];
    const lines = read('Dockerfile')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const froms = lines.filter((l) => /^FROM\s/i.test(l));
    if (froms.length < 2) p.push(`${froms.length} FROM line(s), want 2`);
    for (const f of froms) if (!/^FROM\s+(--platform=\S+\s+)?node:24[-\w.]*(\s|$)/i.test(f)) p.push(`"${f}" is not node:24`);
    const text = lines.join('\n');
    const lastFrom = text.lastIndexOf('\nFROM ');
    const runtime = text.slice(lastFrom);
    if (!/RUN\s+npm ci(?![^\n]*--omit=dev)/.test(text.slice(0, lastFrom))) p.push('build stage lacks full `npm ci`');
    if (!/RUN\s+npm run build/.test(text.slice(0, lastFrom))) p.push('build stage lacks `npm run build`');
    if (!/npm ci[^\n]*--omit=dev/.test(runtime)) p.push('runtime stage lacks `npm ci --omit=dev`');
    if (!/COPY\s+--from=\S+\s+\S*dist/.test(runtime)) p.push('runtime stage does not copy dist/ from the build stage');
    const users = runtime.split('\n').filter((l) => /^USER\s/i.test(l));
    const user = users.at(-1)?.split(/\s+/)[1];
    if (!user) p.push('runtime stage has no USER');
    else if (/^(root|0)(:|$)/.test(user)) p.push(`runtime USER is ${user}`);
    expect(p).toEqual([]);
  });

  it('Dockerfile: EXPOSE 3000, ENV, HEALTHCHECK /healthz, STOPSIGNAL SIGTERM, exec-form CMD', () => {
    const p: string[] = [];
    const text = read('Dockerfile');
    if (!/^EXPOSE\s+3000\b/m.test(text)) p.push('no EXPOSE 3000');
    const env = text.match(/^ENV\s+.*$/gm)?.join(' ') ?? '';
    for (const kv of ['NODE_ENV=production', 'HOST=0.0.0.0', 'PORT=3000']) if (!env.includes(kv)) p.push(`ENV lacks ${kv}`);
    if (!/^HEALTHCHECK[\s\S]*?CMD[\s\S]*?\bnode\b[\s\S]*?\/healthz/m.test(text)) p.push('no node-based HEALTHCHECK on /healthz');
    if (!/^STOPSIGNAL\s+SIGTERM\s*$/m.test(text)) p.push('no STOPSIGNAL SIGTERM');
    if (!/^CMD\s+\["node",\s*"dist\/main\.js"\]\s*$/m.test(text)) p.push('CMD is not ["node", "dist/main.js"]');
    expect(p).toEqual([]);
  });

  it('.dockerignore excludes local state', () => {
    const entries = new Set(
      read('.dockerignore')
        .split('\n')
        .map((l) => l.trim().replace(/\/$/, ''))
        .filter((l) => l && !l.startsWith('#')),
    );
    const missing = ['node_modules', 'dist', '.git', '.data', '.cache', 'coverage', 'bench/results', '*.log'].filter((e) => !entries.has(e));
    expect(missing).toEqual([]);
  });

  it('nginx.conf: upstream = compose registry services; SSE/WebSocket settings', () => {
    const p: string[] = [];
    const conf = read('deploy/nginx/nginx.conf')
      .split('\n')
      .map((l) => l.replace(/#.*$/, ''))
      .join('\n');
    const ups = [...conf.matchAll(/upstream\s+(\S+)\s*\{([^}]*)\}/g)];
    if (ups.length === 0) p.push('no upstream block');
    if (!ups.some((u) => /least_conn\s*;/.test(u[2]))) p.push('no least_conn upstream');
    for (const [, name, body] of ups) {
      const hosts = [...body.matchAll(/^\s*server\s+([^\s;:]+)(?::(\d+))?/gm)].map((m) => `${m[1]}:${m[2] ?? 80}`).sort();
      const want = registryNames.map((n) => `${n}:3000`);
      if (JSON.stringify(hosts) !== JSON.stringify(want)) p.push(`upstream ${name} servers [${hosts.join(',')}] != [${want.join(',')}]`);
      if (!/keepalive\s+\d+\s*;/.test(body)) p.push(`upstream ${name} has no keepalive`);
    }
    const need: [RegExp, string][] = [
      [/map\s+\$http_upgrade\s+\$connection_upgrade/, 'map $http_upgrade $connection_upgrade'],
      [/proxy_http_version\s+1\.1\s*;/, 'proxy_http_version 1.1'],
      [/proxy_set_header\s+Upgrade\s+\$http_upgrade\s*;/, 'Upgrade header'],
      [/proxy_set_header\s+Connection\s+\$connection_upgrade\s*;/, 'Connection header'],
      [/proxy_set_header\s+Last-Event-ID\s/i, 'Last-Event-ID passed'],
      [/proxy_set_header\s+X-Forwarded-For\s/, 'X-Forwarded-For'],
      [/proxy_set_header\s+X-Forwarded-Proto\s/, 'X-Forwarded-Proto'],
      [/proxy_set_header\s+X-Request-Id\s/i, 'X-Request-Id'],
      [/proxy_buffering\s+off\s*;/, 'proxy_buffering off'],
      [/proxy_cache\s+off\s*;/, 'proxy_cache off'],
      [/proxy_read_timeout\s+(1h|3600s?|60m)\s*;/, 'proxy_read_timeout 1h'],
      [/proxy_send_timeout\s+(1h|3600s?|60m)\s*;/, 'proxy_send_timeout 1h'],
      [/client_max_body_size\s+1m\s*;/, 'client_max_body_size 1m'],
      [/chunked_transfer_encoding\s+on\s*;/, 'chunked_transfer_encoding on'],
      [/location\s+(=\s*|\^~\s*)?\/ws\/v1\/?\s*\{/, 'location /ws/v1'],
      [/location\s+(\^~\s*)?\/api\/v1\/stream\/?\s*\{/, 'location /api/v1/stream/'],
      [/location\s+(=\s*)?\/api\/v1\/discovery\s*\{/, 'location /api/v1/discovery'],
      [/location\s+(\^~\s*)?\/gateway\/stream\/?\s*\{/, 'location /gateway/stream/'],
      [/location\s+(=\s*|\^~\s*)?\/mcp\s*\{/, 'location /mcp'],
    ];
    for (const [re, what] of need) if (!re.test(conf)) p.push(`missing ${what}`);
    const gz = conf.match(/gzip_types\s+([^;]*);/);
    if (gz && /text\/event-stream/.test(gz[1])) p.push('gzip_types includes text/event-stream');
    // Each streaming location must disable buffering and use the long timeout.
    for (const loc of ['/api/v1/stream/', '/api/v1/discovery', '/gateway/stream/', '/ws/v1', '/mcp']) {
      const m = conf.match(new RegExp(`location\\s+(?:=\\s*|\\^~\\s*)?${loc.replace(/[/.]/g, '\\$&')}\\s*\\{([^}]*)\\}`));
      if (!m) continue;
      if (!/proxy_buffering\s+off/.test(m[1])) p.push(`${loc}: proxy_buffering not off`);
      if (!/proxy_read_timeout\s+(1h|3600s?|60m)/.test(m[1])) p.push(`${loc}: proxy_read_timeout not 1h`);
      if (/proxy_set_header/.test(m[1])) p.push(`${loc}: proxy_set_header here would drop the server-level headers`);
    }
    expect(p).toEqual([]);
  });

  (nginxBinary ? it : it.skip)('nginx -t accepts deploy/nginx/nginx.conf (upstream hosts pointed at 127.0.0.1)', () => {
    // Compose service names do not resolve here: point them at local ports instead,
    // and keep pid/log files inside a temp prefix. Everything else is tested as is.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nginx-t-'));
    try {
      mkdirSync(path.join(dir, 'logs'));
      const conf = read('deploy/nginx/nginx.conf')
        .replace(/\bregistry-(\d+):3000\b/g, '127.0.0.1:300$1')
        .replace(/^(\s*pid)\s.*$/m, `$1 ${dir}/nginx.pid;`)
        .replaceAll('/var/log/nginx/', `${dir}/logs/`);
      expect(conf).not.toMatch(/^\s*server\s+registry-/m);
      writeFileSync(path.join(dir, 'nginx.conf'), conf);
      const result = spawnSync(nginxBinary!, ['-t', '-q', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { encoding: 'utf8' });
      expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
      expect(result.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
