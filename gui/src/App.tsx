import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { Api, ApiError, type Credentials, describeError, login, logout } from './api';
import { Console } from './Console';
import type { Me } from './types';

/**
 * A hint (not a secret) that this browser holds a session cookie, so a fresh
 * page asks `/auth/me` only then and a signed-out visitor sees the login form
 * without a 401 first. The cookie itself is HttpOnly; API keys are never stored.
 */
const SESSION_HINT = 'ar-admin-signed-in';

interface Session {
  api: Api;
  me: Me;
}

export function App() {
  const [session, setSession] = useState<Session>();
  const [booting, setBooting] = useState(() => hasHint());
  const [message, setMessage] = useState<string>();

  const start = useCallback(async (credentials: Credentials) => {
    const api = new Api(credentials);
    const me = await api.me();
    setSession({ api, me });
  }, []);

  // A session cookie from an earlier visit: use it if it is still good.
  useEffect(() => {
    if (!hasHint()) return;
    let cancelled = false;
    const api = new Api({ kind: 'cookie' });
    api
      .me()
      .then(
        (me) => !cancelled && setSession({ api, me }),
        () => setHint(false),
      )
      .finally(() => !cancelled && setBooting(false));
    return () => {
      cancelled = true;
    };
  }, []);

  const signOut = useCallback(
    async (why?: string) => {
      if (session?.api.credentials.kind === 'cookie') await logout();
      setSession(undefined);
      setHint(false);
      setMessage(why);
    },
    [session],
  );

  useEffect(() => {
    session?.api.setUnauthorizedHandler(() => void signOut('Your session has ended: sign in again.'));
  }, [session, signOut]);

  useEffect(() => {
    document.title = session ? `Agentic Registry · ${session.me.name}` : 'Agentic Registry · Sign in';
  }, [session]);

  const onSignOut = useCallback(() => void signOut(), [signOut]);
  const onSessionEnded = useCallback((why: string) => void signOut(`Signed out: ${why}`), [signOut]);

  if (booting) return <p className="boot muted">Loading…</p>;
  if (!session) {
    return (
      <Login
        message={message}
        onPassword={async (username, password) => {
          await login(username, password);
          setHint(true);
          setMessage(undefined);
          await start({ kind: 'cookie' });
        }}
        onKey={async (key) => {
          setMessage(undefined);
          await start({ kind: 'key', key });
        }}
      />
    );
  }
  return <Console key={session.me.name} api={session.api} me={session.me} onSignOut={onSignOut} onSessionEnded={onSessionEnded} />;
}

function hasHint(): boolean {
  try {
    return window.localStorage.getItem(SESSION_HINT) === '1';
  } catch {
    return false;
  }
}

function setHint(on: boolean): void {
  try {
    if (on) window.localStorage.setItem(SESSION_HINT, '1');
    else window.localStorage.removeItem(SESSION_HINT);
  } catch {
    // storage disabled: the login form shows at each load
  }
}

function Login(props: { message?: string; onPassword: (u: string, p: string) => Promise<void>; onKey: (key: string) => Promise<void> }) {
  const [mode, setMode] = useState<'password' | 'key'>('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (mode === 'password') await props.onPassword(username.trim(), password);
      else await props.onKey(key.trim());
    } catch (err) {
      if (err instanceof ApiError && err.status === 401)
        setError(mode === 'password' ? 'Wrong username or password.' : 'This API key is invalid, expired or revoked.');
      else if (err instanceof ApiError && err.status === 429) setError(`Too many attempts: try again in ${err.retryAfterS ?? 'a few'} seconds.`);
      else setError(describeError(err));
      setBusy(false);
    }
  };

  return (
    <main className="login" id="main">
      <form className="login-card" onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <div className="brand">
          <span className="logo" aria-hidden="true" />
          <span>Agentic Registry</span>
        </div>
        <h1 id="login-title">{mode === 'password' ? 'Sign in' : 'Sign in with an API key'}</h1>
        {props.message && (
          <p className="alert info" role="status">
            {props.message}
          </p>
        )}
        {error && (
          <p className="alert error" role="alert">
            {error}
          </p>
        )}
        {mode === 'password' ? (
          <>
            <div className="field">
              <label htmlFor="username">Username</label>
              <input id="username" name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required autoFocus />
            </div>
            <div className="field">
              <label htmlFor="password">Password</label>
              <input
                id="password"
                name="password"
                type="password"
                autoComplete="current-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                required
              />
            </div>
          </>
        ) : (
          <div className="field">
            <label htmlFor="apikey">API key</label>
            <input
              id="apikey"
              name="apikey"
              type="password"
              autoComplete="off"
              spellCheck={false}
              value={key}
              onChange={(e) => setKey(e.target.value)}
              required
              autoFocus
            />
            <small className="hint">Kept in this tab's memory only: reloading the page signs you out.</small>
          </div>
        )}
        <button type="submit" className="primary wide" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <button
          type="button"
          className="link"
          onClick={() => {
            setMode(mode === 'password' ? 'key' : 'password');
            setError(undefined);
          }}
        >
          {mode === 'password' ? 'Sign in with an API key' : 'Sign in with username and password'}
        </button>
      </form>
    </main>
  );
}
