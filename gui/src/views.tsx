import { useMemo, useState } from 'react';
import type { Api } from './api';
import { lineDiff } from './diff';
import { AgentForm, ConfirmDelete, McpServerForm, PromptForm, TrustRuleForm } from './forms';
import { healthOf } from './health';
import { type Kind, promptKey, type RegistryState, type RegistryStore } from './store';
import type { Agent, McpServer, Prompt, Role, TrustRule } from './types';
import { actorLabel, formatTime } from './ui';

export interface ViewProps {
  api: Api;
  store: RegistryStore;
  state: RegistryState;
  role: Role;
  navigate: (path: string) => void;
}

const canEdit = (role: Role) => role === 'editor' || role === 'admin';

type Modal =
  | { type: 'none' }
  | { type: 'create' }
  | { type: 'edit'; key: string }
  | { type: 'delete'; key: string; version?: number; label: string; path: string; kind: Kind };

function sorted<T>(map: ReadonlyMap<string, T>, key: (row: T) => string): T[] {
  return [...map.values()].sort((a, b) => key(a).localeCompare(key(b)));
}

function rowClass(state: RegistryState, rk: string) {
  return state.flashing.has(rk) ? 'flash' : undefined;
}

function Empty(props: { what: string; cols: number }) {
  return (
    <tr className="empty">
      <td colSpan={props.cols}>No {props.what} yet.</td>
    </tr>
  );
}

function ReadOnlyNote(props: { role: Role; needs: string }) {
  return (
    <p className="readonly-note">
      Read-only: your role is {props.role}; changes need {props.needs}.
    </p>
  );
}

// ---------------------------------------------------------------- agents

export function AgentsView({ api, store, state, role, navigate }: ViewProps) {
  const [modal, setModal] = useState<Modal>({ type: 'none' });
  const agents = sorted(state.agents, (a) => a.id);
  const editable = canEdit(role);
  const close = () => setModal({ type: 'none' });
  return (
    <section aria-labelledby="agents-title">
      <div className="section-head">
        <h1 id="agents-title">Agents</h1>
        {editable && (
          <button type="button" className="primary" onClick={() => setModal({ type: 'create' })}>
            New agent
          </button>
        )}
      </div>
      {!editable && <ReadOnlyNote role={role} needs="editor" />}
      <div className="table-wrap">
        <table className="data" data-testid="agents-table">
          <thead>
            <tr>
              <th scope="col">ID</th>
              <th scope="col">Name</th>
              <th scope="col">Model</th>
              <th scope="col">Tags</th>
              <th scope="col">Active prompt</th>
              <th scope="col">Version</th>
              <th scope="col">Updated</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {agents.length === 0 && <Empty what="agents" cols={8} />}
            {agents.map((a) => (
              <tr key={a.id} data-row={`agent:${a.id}`} className={rowClass(state, `agent:${a.id}`)}>
                <td data-label="ID" className="mono">
                  {a.id}
                </td>
                <td data-label="Name" data-field="name">
                  {a.name}
                </td>
                <td data-label="Model">
                  {a.model.provider}/{a.model.name}
                  {a.model.temperature !== undefined && <span className="muted"> · t={a.model.temperature}</span>}
                </td>
                <td data-label="Tags">
                  {a.tags.map((t) => (
                    <span key={t} className="tag">
                      {t}
                    </span>
                  ))}
                </td>
                <td data-label="Active prompt" data-field="active-prompt">
                  {a.activePromptVersion === null ? <span className="muted">none</span> : <span className="pill">v{a.activePromptVersion}</span>}
                </td>
                <td data-label="Version" data-field="version">
                  {a.version}
                </td>
                <td data-label="Updated">{formatTime(a.updatedAt)}</td>
                <td className="row-actions">
                  <button type="button" onClick={() => navigate(`/prompts?agent=${encodeURIComponent(a.id)}`)} aria-label={`Prompts of ${a.id}`}>
                    Prompts
                  </button>
                  {editable && (
                    <>
                      <button type="button" onClick={() => setModal({ type: 'edit', key: a.id })} aria-label={`Edit ${a.id}`}>
                        Edit
                      </button>
                      <button
                        type="button"
                        className="danger"
                        onClick={() =>
                          setModal({
                            type: 'delete',
                            key: a.id,
                            version: a.version,
                            label: `agent ${a.id}`,
                            path: `/agents/${encodeURIComponent(a.id)}`,
                            kind: 'agent',
                          })
                        }
                        aria-label={`Delete ${a.id}`}
                      >
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {modal.type === 'create' && <AgentForm api={api} store={store} onClose={close} />}
      {modal.type === 'edit' && state.agents.get(modal.key) && <AgentForm api={api} store={store} current={state.agents.get(modal.key)} onClose={close} />}
      {modal.type === 'delete' && (
        <ConfirmDelete
          {...modal}
          api={api}
          store={store}
          rowKey={modal.key}
          latestVersion={() => store.getState().agents.get(modal.key)?.version}
          onClose={close}
        />
      )}
    </section>
  );
}

// ---------------------------------------------------------------- MCP servers

export function McpServersView({ api, store, state, role }: ViewProps) {
  const [modal, setModal] = useState<Modal>({ type: 'none' });
  const servers = sorted(state.mcpServers, (s) => s.id);
  const editable = canEdit(role);
  const close = () => setModal({ type: 'none' });
  return (
    <section aria-labelledby="mcp-title">
      <div className="section-head">
        <h1 id="mcp-title">MCP servers</h1>
        {editable && (
          <button type="button" className="primary" onClick={() => setModal({ type: 'create' })}>
            New MCP server
          </button>
        )}
      </div>
      {!editable && <ReadOnlyNote role={role} needs="editor" />}
      <div className="table-wrap">
        <table className="data" data-testid="mcp-table">
          <thead>
            <tr>
              <th scope="col">ID</th>
              <th scope="col">Name</th>
              <th scope="col">URL</th>
              <th scope="col">Transport</th>
              <th scope="col">Health</th>
              <th scope="col">Circuit</th>
              <th scope="col">Enabled</th>
              <th scope="col">Version</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {servers.length === 0 && <Empty what="MCP servers" cols={9} />}
            {servers.map((s: McpServer) => {
              const h = healthOf(s, state.health.get(s.id));
              return (
                <tr key={s.id} data-row={`mcp_server:${s.id}`} className={rowClass(state, `mcp_server:${s.id}`)}>
                  <td data-label="ID" className="mono">
                    {s.id}
                  </td>
                  <td data-label="Name" data-field="name">
                    {s.name}
                  </td>
                  <td data-label="URL" className="mono url">
                    {s.url}
                  </td>
                  <td data-label="Transport">{s.transport}</td>
                  <td data-label="Health">
                    <span className={`badge ${h.badge}`} data-field="health" title={`health: ${h.label}`}>
                      <span aria-hidden="true" className="dot" />
                      {h.label}
                    </span>
                  </td>
                  <td data-label="Circuit" data-field="circuit">
                    <span className={`circuit ${h.circuit}`}>{h.circuit.replace('_', '-')}</span>
                  </td>
                  <td data-label="Enabled">{s.enabled ? 'yes' : 'no'}</td>
                  <td data-label="Version">{s.version}</td>
                  <td className="row-actions">
                    {editable && (
                      <>
                        <button type="button" onClick={() => setModal({ type: 'edit', key: s.id })} aria-label={`Edit ${s.id}`}>
                          Edit
                        </button>
                        <button
                          type="button"
                          className="danger"
                          onClick={() =>
                            setModal({
                              type: 'delete',
                              key: s.id,
                              version: s.version,
                              label: `MCP server ${s.id}`,
                              path: `/mcp-servers/${encodeURIComponent(s.id)}`,
                              kind: 'mcp_server',
                            })
                          }
                          aria-label={`Delete ${s.id}`}
                        >
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {modal.type === 'create' && <McpServerForm api={api} store={store} onClose={close} />}
      {modal.type === 'edit' && state.mcpServers.get(modal.key) && (
        <McpServerForm api={api} store={store} current={state.mcpServers.get(modal.key)} onClose={close} />
      )}
      {modal.type === 'delete' && (
        <ConfirmDelete
          {...modal}
          api={api}
          store={store}
          rowKey={modal.key}
          latestVersion={() => store.getState().mcpServers.get(modal.key)?.version}
          onClose={close}
        />
      )}
    </section>
  );
}

// ---------------------------------------------------------------- trust rules

export function TrustRulesView({ api, store, state, role }: ViewProps) {
  const [modal, setModal] = useState<Modal>({ type: 'none' });
  const rules = sorted(
    state.trustRules,
    (r: TrustRule) => `${r.agentId}\u0000${r.mcpServerId}\u0000${String(1e7 - r.priority).padStart(8, '0')}\u0000${r.toolPattern}`,
  );
  const editable = role === 'admin';
  const close = () => setModal({ type: 'none' });
  if (!state.trustRulesReadable) {
    return (
      <section aria-labelledby="trust-title">
        <h1 id="trust-title">Trust rules</h1>
        <p className="readonly-note">Trust rules are security policy: they are visible to editors and admins (your role is {role}).</p>
      </section>
    );
  }
  return (
    <section aria-labelledby="trust-title">
      <div className="section-head">
        <h1 id="trust-title">Trust rules</h1>
        {editable && (
          <button type="button" className="primary" onClick={() => setModal({ type: 'create' })}>
            New trust rule
          </button>
        )}
      </div>
      {!editable && <ReadOnlyNote role={role} needs="admin" />}
      <div className="table-wrap">
        <table className="data" data-testid="trust-table">
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col">MCP server</th>
              <th scope="col">Tool pattern</th>
              <th scope="col">Effect</th>
              <th scope="col">Priority</th>
              <th scope="col">Description</th>
              <th scope="col">Version</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rules.length === 0 && <Empty what="trust rules" cols={8} />}
            {rules.map((r) => (
              <tr key={r.id} data-row={`trust_rule:${r.id}`} className={rowClass(state, `trust_rule:${r.id}`)}>
                <td data-label="Agent" className="mono">
                  {r.agentId}
                </td>
                <td data-label="MCP server" className="mono">
                  {r.mcpServerId}
                </td>
                <td data-label="Tool pattern" className="mono">
                  {r.toolPattern}
                </td>
                <td data-label="Effect">
                  <span className={`effect ${r.effect}`}>{r.effect.replace('_', ' ')}</span>
                </td>
                <td data-label="Priority">{r.priority}</td>
                <td data-label="Description">{r.description || <span className="muted">—</span>}</td>
                <td data-label="Version">{r.version}</td>
                <td className="row-actions">
                  {editable && (
                    <>
                      <button
                        type="button"
                        onClick={() => setModal({ type: 'edit', key: r.id })}
                        aria-label={`Edit rule ${r.agentId} → ${r.mcpServerId} ${r.toolPattern}`}
                      >
                        Edit
                      </button>
                      <button
                        type="button"
                        className="danger"
                        onClick={() =>
                          setModal({
                            type: 'delete',
                            key: r.id,
                            version: r.version,
                            label: `trust rule ${r.agentId} → ${r.mcpServerId} (${r.toolPattern})`,
                            path: `/trust-rules/${r.id}`,
                            kind: 'trust_rule',
                          })
                        }
                        aria-label={`Delete rule ${r.agentId} → ${r.mcpServerId} ${r.toolPattern}`}
                      >
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {(modal.type === 'create' || modal.type === 'edit') && (
        <TrustRuleForm
          api={api}
          store={store}
          current={modal.type === 'edit' ? state.trustRules.get(modal.key) : undefined}
          agents={sorted(state.agents, (a) => a.id).map((a) => a.id)}
          servers={sorted(state.mcpServers, (s) => s.id).map((s) => s.id)}
          onClose={close}
        />
      )}
      {modal.type === 'delete' && (
        <ConfirmDelete
          {...modal}
          api={api}
          store={store}
          rowKey={modal.key}
          latestVersion={() => store.getState().trustRules.get(modal.key)?.version}
          onClose={close}
        />
      )}
    </section>
  );
}

// ---------------------------------------------------------------- prompts

export function PromptsView({ api, store, state, role, navigate, agentId }: ViewProps & { agentId?: string }) {
  const agents = sorted(state.agents, (a: Agent) => a.id);
  const selected = agentId && state.agents.has(agentId) ? agentId : agents[0]?.id;
  const prompts = [...state.prompts.values()].filter((p) => p.agentId === selected).sort((a, b) => b.version - a.version);
  const [modal, setModal] = useState<Modal>({ type: 'none' });
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<string>();
  const [viewing, setViewing] = useState<number>();
  const [diffFrom, setDiffFrom] = useState<number>();
  const [diffTo, setDiffTo] = useState<number>();
  const editable = canEdit(role);
  const close = () => setModal({ type: 'none' });

  const from = diffFrom ?? prompts[1]?.version;
  const to = diffTo ?? prompts[0]?.version;
  const fromPrompt = selected && from ? state.prompts.get(promptKey(selected, from)) : undefined;
  const toPrompt = selected && to ? state.prompts.get(promptKey(selected, to)) : undefined;
  const shown = selected && viewing ? state.prompts.get(promptKey(selected, viewing)) : undefined;

  const activate = async (p: Prompt) => {
    setBusy(`${p.version}`);
    setError(undefined);
    try {
      const { body } = await api.request<Prompt>('POST', `/agents/${encodeURIComponent(p.agentId)}/prompts/${p.version}/activate`);
      store.put('prompt', promptKey(body.agentId, body.version), { ...p, ...body, active: true });
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <section aria-labelledby="prompts-title">
      <div className="section-head">
        <h1 id="prompts-title">Prompts</h1>
        <div className="inline-field">
          <label htmlFor="prompt-agent">Agent</label>
          <select
            id="prompt-agent"
            value={selected ?? ''}
            onChange={(e) => {
              setDiffFrom(undefined);
              setDiffTo(undefined);
              setViewing(undefined);
              navigate(`/prompts?agent=${encodeURIComponent(e.target.value)}`);
            }}
          >
            {agents.map((a) => (
              <option key={a.id} value={a.id}>
                {a.id} — {a.name}
              </option>
            ))}
          </select>
        </div>
        {editable && selected && (
          <button type="button" className="primary" onClick={() => setModal({ type: 'create' })}>
            New version
          </button>
        )}
      </div>
      {!editable && <ReadOnlyNote role={role} needs="editor" />}
      {error && (
        <div className="alert error" role="alert">
          {error}
        </div>
      )}
      {!selected ? (
        <p className="muted">No agents yet.</p>
      ) : (
        <>
          <div className="table-wrap">
            <table className="data" data-testid="prompts-table">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Status</th>
                  <th scope="col">Description</th>
                  <th scope="col">Variables</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {prompts.length === 0 && <Empty what="prompt versions" cols={6} />}
                {prompts.map((p) => (
                  <tr key={p.version} data-row={`prompt:${p.agentId}/${p.version}`} className={rowClass(state, `prompt:${p.agentId}/${p.version}`)}>
                    <td data-label="Version">v{p.version}</td>
                    <td data-label="Status">{p.active ? <span className="pill active">active</span> : <span className="muted">inactive</span>}</td>
                    <td data-label="Description">{p.description || <span className="muted">—</span>}</td>
                    <td data-label="Variables" className="mono">
                      {p.variables.join(', ') || '—'}
                    </td>
                    <td data-label="Created">
                      {formatTime(p.createdAt)}
                      {p.createdBy && <span className="muted"> by {actorLabel(p.createdBy)}</span>}
                    </td>
                    <td className="row-actions">
                      <button
                        type="button"
                        onClick={() => setViewing(viewing === p.version ? undefined : p.version)}
                        aria-pressed={viewing === p.version}
                        aria-label={`View v${p.version}`}
                      >
                        View
                      </button>
                      {editable && !p.active && (
                        <>
                          <button type="button" onClick={() => void activate(p)} disabled={busy !== undefined} aria-label={`Activate v${p.version}`}>
                            Activate
                          </button>
                          <button
                            type="button"
                            className="danger"
                            onClick={() =>
                              setModal({
                                type: 'delete',
                                key: promptKey(p.agentId, p.version),
                                label: `prompt v${p.version} of ${p.agentId}`,
                                path: `/agents/${encodeURIComponent(p.agentId)}/prompts/${p.version}`,
                                kind: 'prompt',
                              })
                            }
                            aria-label={`Delete v${p.version}`}
                          >
                            Delete
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {shown && (
            <div className="panel">
              <h2>
                {shown.agentId} v{shown.version}
              </h2>
              <pre className="template" tabIndex={0}>
                {shown.template}
              </pre>
            </div>
          )}
          {prompts.length >= 2 && (
            <div className="panel" data-testid="prompt-diff">
              <div className="section-head">
                <h2>Diff</h2>
                <div className="inline-field">
                  <label htmlFor="diff-from">From</label>
                  <select id="diff-from" value={from} onChange={(e) => setDiffFrom(Number(e.target.value))}>
                    {prompts.map((p) => (
                      <option key={p.version} value={p.version}>
                        v{p.version}
                      </option>
                    ))}
                  </select>
                  <label htmlFor="diff-to">to</label>
                  <select id="diff-to" value={to} onChange={(e) => setDiffTo(Number(e.target.value))}>
                    {prompts.map((p) => (
                      <option key={p.version} value={p.version}>
                        v{p.version}
                      </option>
                    ))}
                  </select>
                </div>
              </div>
              {fromPrompt && toPrompt && <Diff before={fromPrompt.template} after={toPrompt.template} />}
            </div>
          )}
        </>
      )}
      {modal.type === 'create' && selected && <PromptForm api={api} store={store} agentId={selected} latest={prompts[0]} onClose={close} />}
      {modal.type === 'delete' && <ConfirmDelete {...modal} api={api} store={store} rowKey={modal.key} latestVersion={() => undefined} onClose={close} />}
    </section>
  );
}

function Diff(props: { before: string; after: string }) {
  const lines = useMemo(() => lineDiff(props.before, props.after), [props.before, props.after]);
  if (!lines) return <p className="muted">These versions are too large to compare here.</p>;
  if (lines.every((l) => l.op === 'same')) return <p className="muted">The templates are identical.</p>;
  return (
    <pre className="diff" tabIndex={0} aria-label="Line diff of the two templates">
      {lines.map((l, i) => (
        <span key={i} className={`line ${l.op}`}>
          <span className="sign" aria-hidden="true">
            {l.op === 'add' ? '+' : l.op === 'del' ? '−' : ' '}
          </span>
          <span className="sr-only">{l.op === 'add' ? 'added: ' : l.op === 'del' ? 'removed: ' : ''}</span>
          {l.text || ' '}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}
