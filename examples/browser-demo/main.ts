// The browser demo: every network call goes through @agentic-registry/client (the built package, as an application imports it).
import { callToolStream, type ChangeEvent, follow, type GatewaySession, HttpError, JsonRpcError, openSession } from '@agentic-registry/client';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement | HTMLTextAreaElement>(id);

let apiKey = ''; // kept in this tab's memory only
let changes: AbortController | undefined;
let session: GatewaySession | undefined;
let toolCall: AbortController | undefined;

/** Appends a line to a list, newest first, keeping at most 200. */
function log(listId: string, text: string, kind?: 'error'): HTMLLIElement {
  const li = document.createElement('li');
  li.textContent = text;
  if (kind) li.className = kind;
  const list = $(listId);
  list.prepend(li);
  while (list.childElementCount > 200) list.lastElementChild!.remove();
  return li;
}

function describe(error: unknown): string {
  if (error instanceof JsonRpcError) return `JSON-RPC ${error.code}: ${error.message}`;
  if (error instanceof HttpError) return `HTTP ${error.status}: ${error.problem?.detail ?? error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function parseJson(id: string): Record<string, unknown> {
  const text = input(id).value.trim();
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

async function followChanges(): Promise<void> {
  changes?.abort();
  changes = new AbortController();
  const state = $('changes-state');
  try {
    for await (const e of follow({
      apiKey,
      signal: changes.signal,
      onStatus: (s) => (state.textContent = s.state === 'retrying' ? `reconnecting (${describe(s.error)})` : s.state),
    })) {
      const event: ChangeEvent = e;
      log('changes', `${event.seq} ${event.type} ${event.id}${event.actor ? ` by ${event.actor}` : ''}`);
    }
    state.textContent = 'stopped';
  } catch (error) {
    state.textContent = `stopped: ${describe(error)}`;
  }
}

$('auth').addEventListener('submit', (e) => {
  e.preventDefault();
  apiKey = input('api-key').value.trim();
  $('auth-state').textContent = 'connected';
  void followChanges();
});

function sessionControls(open: boolean): void {
  $<HTMLButtonElement>('open-session').disabled = open;
  $<HTMLButtonElement>('close-session').disabled = !open;
  $<HTMLButtonElement>('send').disabled = !open;
}

$('session-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void (async () => {
    const servers = input('servers')
      .value.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    $('session-state').textContent = 'opening…';
    try {
      const s = await openSession({ apiKey, servers });
      session = s;
      $('session-state').textContent = `open: ${s.id}`;
      const list = $('session-servers');
      list.replaceChildren(
        ...s.servers.map((srv) => {
          const li = document.createElement('li');
          li.textContent = `${srv.id}: ${srv.status}${srv.error ? ` (${srv.error})` : ''}`;
          return li;
        }),
      );
      let heartbeats = 0;
      s.addEventListener('heartbeat', () => ($('heartbeats').textContent = String(++heartbeats)));
      s.addEventListener('notification', (ev) => log('session-log', `notification ${JSON.stringify((ev as CustomEvent).detail)}`));
      s.addEventListener('response', (ev) => log('session-log', `response ${JSON.stringify((ev as CustomEvent).detail).slice(0, 400)}`));
      s.addEventListener('error', (ev) => log('session-log', `error ${JSON.stringify((ev as CustomEvent).detail)}`, 'error'));
      s.addEventListener('request-timeout', (ev) => log('session-log', `request-timeout ${JSON.stringify((ev as CustomEvent).detail)}`, 'error'));
      s.addEventListener('closed', (ev) => {
        $('session-state').textContent = `closed: ${(ev as CustomEvent<{ reason: string }>).detail.reason}`;
        sessionControls(false);
      });
      sessionControls(true);
    } catch (error) {
      $('session-state').textContent = `failed: ${describe(error)}`;
    }
  })();
});

$('close-session').addEventListener('click', () => void session?.close());

$('request-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const method = input('method').value.trim();
  void (async () => {
    try {
      const result: unknown = await session!.request(method, parseJson('params'));
      log('session-log', `result of ${method}: ${JSON.stringify(result).slice(0, 400)}`).dataset.result = method;
    } catch (error) {
      log('session-log', `${method} failed: ${describe(error)}`, 'error');
    }
  })();
});

$('tool-form').addEventListener('submit', (e) => {
  e.preventDefault();
  toolCall?.abort();
  const controller = new AbortController();
  toolCall = controller;
  const bar = $<HTMLProgressElement>('tool-progress');
  const state = $('tool-state');
  const result = $('tool-result');
  bar.value = 0;
  result.textContent = '';
  $<HTMLButtonElement>('cancel-tool').disabled = false;
  void (async () => {
    try {
      const args = parseJson('tool-args');
      for await (const ev of callToolStream({ apiKey, signal: controller.signal }, input('tool-server').value.trim(), input('tool-name').value.trim(), args)) {
        if (ev.type === 'start') state.textContent = 'started';
        if (ev.type === 'progress') {
          bar.max = ev.total ?? 1;
          bar.value = ev.progress;
          state.textContent = `progress ${ev.progress}${ev.total !== undefined ? `/${ev.total}` : ''}${ev.message ? ` — ${ev.message}` : ''}`;
        }
        if (ev.type === 'result') result.textContent = JSON.stringify(ev.result, null, 2);
        if (ev.type === 'complete') state.textContent = `complete in ${ev.durationMs} ms`;
      }
    } catch (error) {
      state.textContent = controller.signal.aborted ? 'cancelled' : `failed: ${describe(error)}`;
    } finally {
      $<HTMLButtonElement>('cancel-tool').disabled = true;
    }
  })();
});

$('cancel-tool').addEventListener('click', () => toolCall?.abort());
