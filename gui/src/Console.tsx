import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import type { ChangeMessage, PresenceUser } from '@protocol';
import { type Api, describeError, toNotice } from './api';
import { LiveClient, type LiveStatus } from './live';
import { RegistryStore } from './store';
import type { Me, Notice } from './types';
import { actorLabel } from './ui';
import { AgentsView, McpServersView, PromptsView, TrustRulesView } from './views';

/** While the socket is down the tables are refreshed from the REST API this often. */
export const POLL_MS = 3000;
const TOAST_MS = 6000;
const MAX_TOASTS = 4;
const MAX_ACTIVITY = 100;

interface Toast {
  id: number;
  text: string;
}

interface ActivityItem {
  seq: number;
  type: string;
  id: string;
  actor?: string;
  ts: string;
  mine: boolean;
}

const TABS = [
  { path: '/agents', label: 'Agents' },
  { path: '/prompts', label: 'Prompts' },
  { path: '/mcp-servers', label: 'MCP servers' },
  { path: '/trust-rules', label: 'Trust rules' },
  { path: '/activity', label: 'Activity' },
] as const;

const BASE = '/admin';

function currentRoute(): { path: string; params: URLSearchParams } {
  let path = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length) : '/';
  if (path === '' || path === '/') path = '/agents';
  return { path: path.replace(/\/+$/, ''), params: new URLSearchParams(window.location.search) };
}

export function actorOf(me: Me): string {
  return me.kind === 'api_key' ? `api_key:${me.name}` : `user:${me.name}`;
}

const RESOURCE_LABEL: Record<string, string> = { agent: 'agent', prompt: 'prompt', mcp_server: 'MCP server', trust_rule: 'trust rule' };

/** A field of an event's data as text (numbers and strings as they are, anything else as JSON). */
function text(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : JSON.stringify(value);
}

function describeChange(c: ChangeMessage): string {
  const what = RESOURCE_LABEL[c.resource] ?? c.resource;
  const changed = Array.isArray(c.data?.changed) ? ` (${(c.data.changed as string[]).join(', ')})` : '';
  if (c.resource === 'prompt' && c.action === 'activated')
    return `activated prompt v${text(c.data?.version ?? c.id.split('/').pop())} of ${text(c.data?.agentId ?? c.id.split('/')[0])}`;
  if (c.action === 'health_changed') return `${what} ${c.id} is now ${text(c.data?.to ?? c.data?.status ?? 'changed')}`;
  if (c.action === 'circuit_changed') return `${what} ${c.id}: circuit ${text(c.data?.to ?? c.data?.state ?? 'changed')}`;
  return `${c.action} ${what} ${c.resource === 'trust_rule' ? c.id.slice(0, 8) : c.id}${changed}`;
}

export function Console(props: { api: Api; me: Me; onSignOut: () => void; onSessionEnded: (why: string) => void }) {
  const { api, me, onSessionEnded } = props;
  const store = useMemo(() => new RegistryStore(api), [api]);
  const state = useSyncExternalStore(store.subscribe, store.getState);
  const [status, setStatus] = useState<LiveStatus>('connecting');
  const [lastSeq, setLastSeq] = useState(0);
  const [received, setReceived] = useState(0);
  const [presence, setPresence] = useState<PresenceUser[]>([]);
  const [notices, setNotices] = useState<ReadonlyMap<string, Notice>>(new Map());
  const [dismissed, setDismissed] = useState<ReadonlySet<string>>(new Set());
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [activity, setActivity] = useState<ActivityItem[]>([]);
  const [lastRefresh, setLastRefresh] = useState<Date>();
  const [loadError, setLoadError] = useState<string>();
  const [now, setNow] = useState(() => Date.now());
  const [route, setRoute] = useState(currentRoute);
  const toastSeq = useRef(0);
  const myActor = actorOf(me);

  const navigate = useCallback((to: string) => {
    window.history.pushState(null, '', `${BASE}${to}`);
    setRoute(currentRoute());
    document.getElementById('main')?.focus({ preventScroll: true });
  }, []);

  useEffect(() => {
    const onPop = () => setRoute(currentRoute());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 5000);
    return () => clearInterval(t);
  }, []);

  const toast = useCallback((text: string) => {
    const id = ++toastSeq.current;
    setToasts((list) => [...list, { id, text }].slice(-MAX_TOASTS));
    setTimeout(() => setToasts((list) => list.filter((t) => t.id !== id)), TOAST_MS);
  }, []);

  const addNotice = useCallback((n: Notice) => setNotices((m) => new Map(m).set(n.id, n)), []);

  const refreshNotices = useCallback(async () => {
    const list = await api.notices();
    setNotices(new Map(list.map((n) => [n.id, n])));
  }, [api]);

  // Load (one consistent snapshot), then follow the changes from its cursor.
  useEffect(() => {
    let live: LiveClient | undefined;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const begin = async () => {
      let cursor: number;
      try {
        cursor = await store.load();
        setLoadError(undefined);
        setLastRefresh(new Date());
      } catch (error) {
        if (stopped) return;
        setLoadError(describeError(error));
        retry = setTimeout(() => void begin(), POLL_MS);
        return;
      }
      void refreshNotices().catch(() => undefined);
      if (stopped) return;
      setLastSeq(cursor);
      live = new LiveClient(api.credentials, cursor, {
        status: (s) => setStatus(s),
        change: (c) => {
          setLastSeq(live!.lastSeq);
          setReceived(live!.received);
          if (c.type.startsWith('system.')) {
            const notice = toNotice({ ...c.data, id: c.id }, c.type);
            if (notice) addNotice(notice);
            return;
          }
          store.handle(c);
          const mine = c.actor === myActor;
          setActivity((list) => [{ seq: c.seq, type: c.type, id: c.id, actor: c.actor, ts: c.ts, mine }, ...list].slice(0, MAX_ACTIVITY));
          // A toast for each change another user (or API key) made; the service's own (health probes) only update rows.
          if (c.actor && !mine && /^(user|api_key):/.test(c.actor)) toast(`${actorLabel(c.actor)} ${describeChange(c)}`);
        },
        reset: () => {
          void store.load().then(
            () => setLastRefresh(new Date()),
            () => undefined,
          );
        },
        presence: setPresence,
        unauthorized: (why) => onSessionEnded(why),
      });
      live.start();
    };
    void begin();
    return () => {
      stopped = true;
      clearTimeout(retry);
      live?.stop();
    };
  }, [api, store, myActor, toast, addNotice, refreshNotices, onSessionEnded]);

  // Socket down: refresh the tables (and notices) from REST every few seconds; the live position stays where it was.
  useEffect(() => {
    if (status !== 'paused') return;
    const tick = async () => {
      try {
        await store.load();
        await refreshNotices();
        setLastRefresh(new Date());
        setLoadError(undefined);
      } catch (error) {
        setLoadError(describeError(error));
      }
    };
    void tick();
    const t = setInterval(() => void tick(), POLL_MS);
    return () => clearInterval(t);
  }, [status, store, refreshNotices]);

  const activeNotices = [...notices.values()].filter((n) => !dismissed.has(n.id) && (!n.expiresAt || Date.parse(n.expiresAt) > now));
  const others = presence.filter((u) => !(u.kind === me.kind && u.name === me.name));

  let view;
  const viewProps = { api, store, state, role: me.role, navigate };
  switch (route.path) {
    case '/prompts':
      view = <PromptsView {...viewProps} agentId={route.params.get('agent') ?? undefined} />;
      break;
    case '/mcp-servers':
      view = <McpServersView {...viewProps} />;
      break;
    case '/trust-rules':
      view = <TrustRulesView {...viewProps} />;
      break;
    case '/activity':
      view = <ActivityView items={activity} lastSeq={lastSeq} received={received} />;
      break;
    default:
      view = <AgentsView {...viewProps} />;
  }

  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true" />
          <span>Agentic Registry</span>
        </div>
        <ConnectionIndicator status={status} lastSeq={lastSeq} lastRefresh={lastRefresh} />
        <div className="presence" data-testid="presence" aria-label="Who else is online">
          <span className="muted">Online:</span>
          {others.length === 0 ? (
            <span className="muted">{status === 'live' ? 'only you' : '—'}</span>
          ) : (
            <ul>
              {others.map((u) => (
                <li key={u.userId} className="person" title={u.kind === 'api_key' ? `API key ${u.name}` : u.name} data-user={u.name}>
                  <span className="avatar" aria-hidden="true">
                    {u.name.slice(0, 1).toUpperCase()}
                  </span>
                  {u.kind === 'api_key' ? `🔑 ${u.name}` : u.name}
                  {u.tabs > 1 && <span className="muted"> ({u.tabs} tabs)</span>}
                </li>
              ))}
            </ul>
          )}
        </div>
        <div className="me">
          <span data-testid="me">
            {me.kind === 'api_key' ? 'API key ' : ''}
            <strong>{me.name}</strong> <span className="role">{me.role}</span>
          </span>
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <div className="notices" data-testid="notices">
        {activeNotices.map((n) => (
          <div key={n.id} className={`notice ${n.kind === 'system.maintenance' ? 'maintenance' : 'alert'}`} role="alert" data-notice={n.id}>
            <span className="notice-text">
              <strong>{n.kind === 'system.maintenance' ? 'Maintenance' : 'Notice'}:</strong> {n.message}
              {n.expiresAt && <span className="until"> (until {new Date(n.expiresAt).toLocaleTimeString()})</span>}
            </span>
            <button type="button" className="icon" aria-label="Dismiss notice" onClick={() => setDismissed((d) => new Set(d).add(n.id))}>
              ×
            </button>
          </div>
        ))}
      </div>
      <nav className="tabs" aria-label="Sections">
        {TABS.map((t) => (
          <a
            key={t.path}
            href={`${BASE}${t.path}`}
            aria-current={route.path === t.path || (t.path === '/agents' && !TABS.some((x) => x.path === route.path)) ? 'page' : undefined}
            onClick={(e) => {
              if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
              e.preventDefault();
              navigate(t.path);
            }}
          >
            {t.label}
            {t.path === '/agents' && <span className="count">{state.agents.size}</span>}
            {t.path === '/mcp-servers' && <span className="count">{state.mcpServers.size}</span>}
            {t.path === '/trust-rules' && state.trustRulesReadable && <span className="count">{state.trustRules.size}</span>}
          </a>
        ))}
      </nav>
      <main id="main" tabIndex={-1}>
        {loadError && (
          <div className="alert error" role="alert">
            Could not load the registry: {loadError}. Retrying…
          </div>
        )}
        {state.loaded ? view : !loadError && <p className="muted">Loading…</p>}
      </main>
      <div className="toasts" role="status" aria-live="polite" data-testid="toasts">
        {toasts.map((t) => (
          <div key={t.id} className="toast">
            <span>{t.text}</span>
            <button type="button" className="icon" aria-label="Dismiss" onClick={() => setToasts((list) => list.filter((x) => x.id !== t.id))}>
              ×
            </button>
          </div>
        ))}
      </div>
    </div>
  );
}

function ConnectionIndicator(props: { status: LiveStatus; lastSeq: number; lastRefresh?: Date }) {
  const label =
    props.status === 'live' ? 'Live' : props.status === 'connecting' ? 'Connecting…' : props.status === 'paused' ? 'Live updates paused' : 'Disconnected';
  return (
    <div className={`conn ${props.status}`} role="status" data-testid="connection" data-status={props.status} data-last-seq={props.lastSeq}>
      <span className="dot" aria-hidden="true" />
      <span className="conn-label">{label}</span>
      {props.status === 'paused' && (
        <span className="conn-detail">
          refreshing every {POLL_MS / 1000} s{props.lastRefresh ? `, last ${props.lastRefresh.toLocaleTimeString()}` : ''}
        </span>
      )}
    </div>
  );
}

function ActivityView(props: { items: ActivityItem[]; lastSeq: number; received: number }) {
  return (
    <section aria-labelledby="activity-title">
      <div className="section-head">
        <h1 id="activity-title">Activity</h1>
        <span className="muted" data-testid="activity-position">
          position {props.lastSeq} · {props.received} events received live
        </span>
      </div>
      <div className="table-wrap">
        <table className="data" data-testid="activity-table">
          <thead>
            <tr>
              <th scope="col">Seq</th>
              <th scope="col">Time</th>
              <th scope="col">Event</th>
              <th scope="col">Resource</th>
              <th scope="col">By</th>
            </tr>
          </thead>
          <tbody>
            {props.items.length === 0 && (
              <tr className="empty">
                <td colSpan={5}>No changes since this page was opened.</td>
              </tr>
            )}
            {props.items.map((a) => (
              <tr key={a.seq} data-seq={a.seq}>
                <td data-label="Seq">{a.seq}</td>
                <td data-label="Time">{new Date(a.ts).toLocaleTimeString()}</td>
                <td data-label="Event" className="mono">
                  {a.type}
                </td>
                <td data-label="Resource" className="mono">
                  {a.id}
                </td>
                <td data-label="By">{a.actor ? `${actorLabel(a.actor)}${a.mine ? ' (you)' : ''}` : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
