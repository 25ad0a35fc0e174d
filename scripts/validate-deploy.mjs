#!/usr/bin/env node
// Structural checks for the deployment files, using node built-ins only.
//
//   node scripts/validate-deploy.mjs [repoRoot]
//
// Parses docker-compose.yml with a small YAML-subset reader (block mappings and
// sequences, flow sequences, quoted/plain scalars, comments, anchors, aliases and
// `<<` merge keys: what docker-compose.yml uses; block scalars `|`/`>` are rejected),
// then checks docker-compose.yml, Dockerfile, .dockerignore and deploy/nginx/nginx.conf.
// Prints one "PASS|FAIL <check>" line per check; exits 1 if any check fails.

import { readFileSync, existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));

// ---------------------------------------------------------------- YAML subset

class YamlError extends Error {}

function stripComment(s) {
  let q = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (q === "'" && c === "'" && s[i + 1] === "'") { i++; continue; }
      if (q === '"' && c === '\\') { i++; continue; }
      if (c === q) q = null;
    } else if (c === '"' || c === "'") {
      q = c;
    } else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]))) {
      return s.slice(0, i);
    }
  }
  return s;
}

/** Index of the `:` that ends a mapping key (followed by space or end), or -1. */
function keyColon(s) {
  let q = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (q === '"' && c === '\\') { i++; continue; }
      if (c === q) q = null;
    } else if ((c === '"' || c === "'") && i === 0) {
      q = c;
    } else if (c === '[' || c === '{') {
      return -1;
    } else if (c === ':' && (i + 1 === s.length || s[i + 1] === ' ')) {
      return i;
    }
  }
  return -1;
}

function unquote(s) {
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) return JSON.parse(s);
  if (s.startsWith("'") && s.endsWith("'") && s.length >= 2) return s.slice(1, -1).replace(/''/g, "'");
  return s;
}

function splitFlow(inner) {
  const out = [];
  let cur = '', q = null, depth = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (q) {
      cur += c;
      if (q === '"' && c === '\\') { cur += inner[++i]; continue; }
      if (c === q) q = null;
    } else if (c === '"' || c === "'") { q = c; cur += c; }
    else if (c === '[' || c === '{') { depth++; cur += c; }
    else if (c === ']' || c === '}') { depth--; cur += c; }
    else if (c === ',' && depth === 0) { out.push(cur.trim()); cur = ''; }
    else cur += c;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

function scalar(raw, anchors, lineNo) {
  const s = raw.trim();
  if (s.startsWith('*')) {
    const name = s.slice(1);
    if (!(name in anchors)) throw new YamlError(`line ${lineNo}: unknown alias *${name}`);
    return anchors[name];
  }
  if (s === '|' || s === '>' || /^[|>][+-]?\d*$/.test(s)) {
    throw new YamlError(`line ${lineNo}: block scalars are not supported by this checker`);
  }
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new YamlError(`line ${lineNo}: multi-line flow sequence not supported`);
    return splitFlow(s.slice(1, -1)).map((x) => scalar(x, anchors, lineNo));
  }
  if (s.startsWith('{')) {
    if (!s.endsWith('}')) throw new YamlError(`line ${lineNo}: multi-line flow mapping not supported`);
    const obj = {};
    for (const part of splitFlow(s.slice(1, -1))) {
      const k = keyColon(part);
      if (k < 0) throw new YamlError(`line ${lineNo}: bad flow mapping entry "${part}"`);
      obj[unquote(part.slice(0, k).trim())] = scalar(part.slice(k + 1), anchors, lineNo);
    }
    return obj;
  }
  if (s === '' || s === '~' || s === 'null') return null;
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^-?\d+$/.test(s)) return Number(s);
  return unquote(s);
}

export function parseYaml(text) {
  const lines = [];
  text.split(/\r?\n/).forEach((l, i) => {
    if (/\t/.test(l.match(/^\s*/)[0])) throw new YamlError(`line ${i + 1}: tab indentation`);
    const body = stripComment(l).replace(/\s+$/, '');
    if (body.trim() === '' || body.trim() === '---') return;
    lines.push({ indent: body.length - body.trimStart().length, text: body.trimStart(), no: i + 1 });
  });
  const anchors = {};
  let pos = 0;

  // value text after "key:" or "- ": optional &anchor, then scalar or nested block
  function valueAfter(rest, parentIndent, lineNo, inMapping = false) {
    let anchor = null;
    let r = rest.trim();
    const m = r.match(/^&([^\s]+)\s*(.*)$/);
    if (m) { anchor = m[1]; r = m[2]; }
    let v;
    if (r === '') {
      const next = lines[pos];
      const seqAtSameIndent = next && next.indent === parentIndent && inMapping && (next.text === '-' || next.text.startsWith('- '));
      v = next && (next.indent > parentIndent || seqAtSameIndent) ? block(next.indent) : null;
    } else {
      v = scalar(r, anchors, lineNo);
    }
    if (anchor) anchors[anchor] = v;
    return v;
  }

  function block(indent) {
    const first = lines[pos];
    if (first.text.startsWith('- ') || first.text === '-') {
      const arr = [];
      while (pos < lines.length && lines[pos].indent === indent && (lines[pos].text.startsWith('- ') || lines[pos].text === '-')) {
        const ln = lines[pos];
        const rest = ln.text === '-' ? '' : ln.text.slice(2);
        if (rest !== '' && keyColon(rest.trim()) > 0 && !rest.trim().startsWith('&')) {
          // "- key: value" starts a mapping inside the sequence item
          const innerIndent = indent + 2 + (rest.length - rest.trimStart().length);
          lines[pos] = { indent: innerIndent, text: rest.trimStart(), no: ln.no };
          arr.push(block(innerIndent));
        } else {
          pos++;
          arr.push(valueAfter(rest, indent, ln.no));
        }
      }
      return arr;
    }
    const obj = {};
    const merges = [];
    while (pos < lines.length && lines[pos].indent === indent) {
      const ln = lines[pos];
      if (ln.text.startsWith('- ')) throw new YamlError(`line ${ln.no}: sequence item where a mapping key was expected`);
      const k = keyColon(ln.text);
      if (k < 0) throw new YamlError(`line ${ln.no}: expected "key: value", got "${ln.text}"`);
      const key = unquote(ln.text.slice(0, k).trim());
      pos++;
      const v = valueAfter(ln.text.slice(k + 1), indent, ln.no, true);
      if (key === '<<') {
        merges.push(...(Array.isArray(v) ? v : [v]));
      } else {
        if (Object.prototype.hasOwnProperty.call(obj, key)) throw new YamlError(`line ${ln.no}: duplicate key "${key}"`);
        obj[key] = v;
      }
    }
    if (pos < lines.length && lines[pos].indent > indent) {
      throw new YamlError(`line ${lines[pos].no}: unexpected indentation`);
    }
    // explicit keys win over merged ones; earlier merge sources win over later ones
    return Object.assign({}, ...merges.slice().reverse().map((m) => structuredClone(m ?? {})), obj);
  }

  if (lines.length === 0) return null;
  const doc = block(lines[0].indent);
  if (pos < lines.length) throw new YamlError(`line ${lines[pos].no}: unexpected content`);
  return doc;
}

// ---------------------------------------------------------------- checks

let failed = 0;
function check(name, fn) {
  let problems;
  try {
    problems = fn() ?? [];
  } catch (err) {
    problems = [err.message];
  }
  if (problems.length === 0) {
    console.log(`PASS ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}: ${problems.join('; ')}`);
  }
}

function read(rel) {
  const p = join(root, rel);
  if (!existsSync(p)) throw new Error(`${rel} not found`);
  return readFileSync(p, 'utf8');
}

const envMap = (env) => {
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e) => { const i = String(e).indexOf('='); return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)]; }));
  }
  return env ?? {};
};
const dependsOn = (d) => (Array.isArray(d) ? Object.fromEntries(d.map((n) => [n, {}])) : d ?? {});

let compose = null;
check('docker-compose.yml parses (YAML subset)', () => {
  compose = parseYaml(read('docker-compose.yml'));
  const p = [];
  if (!compose || typeof compose !== 'object') p.push('not a mapping');
  else {
    if ('version' in compose) p.push('obsolete top-level "version:" key');
    if (!compose.services || typeof compose.services !== 'object') p.push('no services');
  }
  return p;
});

const services = compose?.services ?? {};
const registryNames = Object.keys(services).filter((n) => /^registry-\d+$/.test(n)).sort();

check('compose: three registry services (registry-1..3), built from ./Dockerfile', () => {
  const p = [];
  const want = ['registry-1', 'registry-2', 'registry-3'];
  if (JSON.stringify(registryNames) !== JSON.stringify(want)) p.push(`found [${registryNames.join(', ')}]`);
  for (const n of want) {
    const b = services[n]?.build;
    const df = typeof b === 'string' ? 'Dockerfile' : b?.dockerfile ?? 'Dockerfile';
    const ctx = typeof b === 'string' ? b : b?.context;
    if (!b) p.push(`${n}: no build`);
    else if (ctx !== '.' || df !== 'Dockerfile') p.push(`${n}: build is not ./Dockerfile`);
  }
  return p;
});

check('compose: registry env (DATABASE_URL->postgres, REDIS_URL->redis, secrets required)', () => {
  const p = [];
  for (const n of registryNames) {
    const env = envMap(services[n].environment);
    if (!/^postgres(ql)?:\/\/.*@postgres(:\d+)?\//.test(env.DATABASE_URL ?? '')) p.push(`${n}: DATABASE_URL must point at service postgres`);
    if (!/^rediss?:\/\/(.*@)?redis(:\d+)?(\/|$)/.test(env.REDIS_URL ?? '')) p.push(`${n}: REDIS_URL must point at service redis`);
    for (const k of ['BOOTSTRAP_ADMIN_KEY', 'SECRET_KEY']) {
      if (!new RegExp(`\\$\\{${k}(:?\\?|:-)`).test(String(env[k] ?? ''))) p.push(`${n}: ${k} must come from \${${k}:?...}`);
    }
    if (String(env.HOST ?? '') !== '0.0.0.0') p.push(`${n}: HOST must be 0.0.0.0`);
  }
  return p;
});

check('compose: registry depends_on postgres+redis healthy, stop_grace_period, healthcheck', () => {
  const p = [];
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
  return p;
});

check('compose: postgres and redis with healthchecks (pg_isready, redis-cli ping)', () => {
  const p = [];
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
      const vname = named.split(':')[0];
      if (!compose.volumes || !(vname in compose.volumes)) p.push(`volume "${vname}" not declared under top-level volumes`);
      const target = named.split(':')[1];
      if (/^postgres:18/.test(pg.image ?? '') && target !== '/var/lib/postgresql') p.push('postgres:18 volume must mount at /var/lib/postgresql');
    }
  }
  if (!rd) p.push('no redis service');
  else {
    if (!/^redis:7/.test(rd.image ?? '')) p.push(`redis image "${rd.image}"`);
    if (!/redis-cli.*ping/.test(JSON.stringify(rd.healthcheck?.test ?? ''))) p.push('redis healthcheck lacks redis-cli ping');
  }
  return p;
});

check('compose: nginx publishes 8080:80 with nginx.conf mounted read-only', () => {
  const p = [];
  const ng = services.nginx;
  if (!ng) return ['no nginx service'];
  if (!/^nginx:/.test(ng.image ?? '')) p.push(`nginx image "${ng.image}"`);
  if (!(ng.ports ?? []).map(String).some((x) => /^(\d+\.\d+\.\d+\.\d+:)?8080:80$/.test(x))) p.push('port 8080:80 not published');
  if (!(ng.volumes ?? []).map(String).includes('./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro')) p.push('nginx.conf not mounted :ro');
  const d = dependsOn(ng.depends_on);
  for (const n of registryNames) if (!(n in d)) p.push(`nginx does not depend on ${n}`);
  if (!existsSync(join(root, 'deploy/nginx/nginx.conf'))) p.push('deploy/nginx/nginx.conf missing');
  return p;
});

check('Dockerfile: two node:24 stages, npm ci / build / --omit=dev, non-root USER', () => {
  const p = [];
  const lines = read('Dockerfile').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
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
  return p;
});

check('Dockerfile: EXPOSE 3000, ENV, HEALTHCHECK /healthz, STOPSIGNAL SIGTERM, exec-form CMD', () => {
  const p = [];
  const text = read('Dockerfile');
  if (!/^EXPOSE\s+3000\b/m.test(text)) p.push('no EXPOSE 3000');
  const env = text.match(/^ENV\s+.*$/gm)?.join(' ') ?? '';
  for (const kv of ['NODE_ENV=production', 'HOST=0.0.0.0', 'PORT=3000']) if (!env.includes(kv)) p.push(`ENV lacks ${kv}`);
  if (!/^HEALTHCHECK[\s\S]*?CMD[\s\S]*?\bnode\b[\s\S]*?\/healthz/m.test(text)) p.push('no node-based HEALTHCHECK on /healthz');
  if (!/^STOPSIGNAL\s+SIGTERM\s*$/m.test(text)) p.push('no STOPSIGNAL SIGTERM');
  if (!/^CMD\s+\["node",\s*"dist\/main\.js"\]\s*$/m.test(text)) p.push('CMD is not ["node", "dist/main.js"]');
  return p;
});

check('.dockerignore excludes local state', () => {
  const entries = new Set(read('.dockerignore').split('\n').map((l) => l.trim().replace(/\/$/, '')).filter((l) => l && !l.startsWith('#')));
  return ['node_modules', 'dist', '.git', '.data', '.cache', 'coverage', 'bench/results', '*.log']
    .filter((e) => !entries.has(e)).map((e) => `missing ${e}`);
});

check('nginx.conf: upstream = compose registry services; SSE/WebSocket settings', () => {
  const p = [];
  const conf = read('deploy/nginx/nginx.conf').split('\n').map((l) => l.replace(/#.*$/, '')).join('\n');
  const ups = [...conf.matchAll(/upstream\s+(\S+)\s*\{([^}]*)\}/g)];
  if (ups.length === 0) p.push('no upstream block');
  const main = ups.find((u) => /least_conn\s*;/.test(u[2]));
  if (!main) p.push('no least_conn upstream');
  for (const [, name, body] of ups) {
    const hosts = [...body.matchAll(/^\s*server\s+([^\s;:]+)(?::(\d+))?/gm)].map((m) => `${m[1]}:${m[2] ?? 80}`).sort();
    const want = registryNames.map((n) => `${n}:3000`);
    if (JSON.stringify(hosts) !== JSON.stringify(want)) p.push(`upstream ${name} servers [${hosts}] != [${want}]`);
    if (!/keepalive\s+\d+\s*;/.test(body)) p.push(`upstream ${name} has no keepalive`);
  }
  const need = [
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
  // each streaming location must disable buffering and use the long timeout
  for (const loc of ['/api/v1/stream/', '/api/v1/discovery', '/gateway/stream/', '/ws/v1', '/mcp']) {
    const m = conf.match(new RegExp(`location\\s+(?:=\\s*|\\^~\\s*)?${loc.replace(/[/.]/g, '\\$&')}\\s*\\{([^}]*)\\}`));
    if (!m) continue;
    if (!/proxy_buffering\s+off/.test(m[1])) p.push(`${loc}: proxy_buffering not off`);
    if (!/proxy_read_timeout\s+(1h|3600s?|60m)/.test(m[1])) p.push(`${loc}: proxy_read_timeout not 1h`);
    if (/proxy_set_header/.test(m[1])) p.push(`${loc}: proxy_set_header here would drop the server-level headers`);
  }
  return p;
});

process.exit(failed ? 1 : 0);
