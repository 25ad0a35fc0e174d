import { type FormEvent, useState } from 'react';
import { ApiError, type Api, describeError } from './api';
import type { Kind, RegistryStore } from './store';
import type { Agent, McpServer, Prompt, TrustRule } from './types';
import { ConflictNotice, Dialog, ErrorNotice, Field } from './ui';

/** Busy / error / 412-conflict state of one submit. */
function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const conflict = error instanceof ApiError && error.isConflict;
  const fieldErrors: Record<string, string> = {};
  if (error instanceof ApiError) for (const e of error.problem.errors ?? []) fieldErrors[e.field.split('.')[0]] ??= e.message;
  const message = error && !conflict ? describeError(error) : undefined;
  return { busy, error, conflict, fieldErrors, message, run, clear: () => setError(undefined) };
}

const splitList = (text: string) =>
  text
    .split(/[,\s]+/)
    .map((t) => t.trim())
    .filter(Boolean);

function sameList(a: string[], b: string[]) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

interface FormProps<T> {
  api: Api;
  store: RegistryStore;
  /** The row being edited; none: create. */
  current?: T;
  onClose: () => void;
}

// ---------------------------------------------------------------- agents

export function AgentForm({ api, store, current, onClose }: FormProps<Agent>) {
  const editing = current !== undefined;
  const initial = (a?: Agent) => ({
    id: a?.id ?? '',
    name: a?.name ?? '',
    description: a?.description ?? '',
    provider: a?.model.provider ?? '',
    model: a?.model.name ?? '',
    temperature: a?.model.temperature?.toString() ?? '',
    tags: a?.tags.join(', ') ?? '',
  });
  const [base, setBase] = useState(current);
  const [v, setV] = useState(initial(current));
  const submit = useSubmit();
  const set = (k: keyof typeof v) => (e: { target: { value: string } }) => setV({ ...v, [k]: e.target.value });

  const reload = () =>
    void submit.run(async () => {
      const fresh = await api.get<Agent>(`/agents/${encodeURIComponent(current!.id)}`);
      store.put('agent', fresh.id, fresh);
      setBase(fresh);
      setV(initial(fresh));
    });

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit.run(async () => {
      const model = { ...(base?.model ?? {}), provider: v.provider.trim(), name: v.model.trim() };
      if (v.temperature.trim() === '') delete model.temperature;
      else model.temperature = Number(v.temperature);
      const tags = splitList(v.tags);
      if (!editing) {
        const { body } = await api.request<Agent>('POST', '/agents', {
          body: { id: v.id.trim(), name: v.name, description: v.description, model, tags },
        });
        store.put('agent', body.id, body);
      } else {
        const patch: Record<string, unknown> = {};
        if (v.name !== base!.name) patch.name = v.name;
        if (v.description !== base!.description) patch.description = v.description;
        if (JSON.stringify(model) !== JSON.stringify(base!.model)) patch.model = model;
        if (!sameList(tags, base!.tags)) patch.tags = tags;
        if (Object.keys(patch).length > 0) {
          const { body } = await api.request<Agent>('PATCH', `/agents/${encodeURIComponent(base!.id)}`, { body: patch, ifMatch: base!.version });
          store.put('agent', body.id, body);
        }
      }
      onClose();
    });
  };

  return (
    <Dialog title={editing ? `Edit agent ${current.id}` : 'New agent'} onClose={onClose} testId="agent-form">
      <form onSubmit={onSubmit} noValidate>
        {submit.conflict && <ConflictNotice onReload={reload} busy={submit.busy} />}
        {submit.message && <ErrorNotice message={submit.message} />}
        {!editing && (
          <Field label="ID" error={submit.fieldErrors.id} hint="lowercase slug, e.g. pmo">
            {(id, d) => <input id={id} aria-describedby={d} name="id" value={v.id} onChange={set('id')} required data-autofocus />}
          </Field>
        )}
        <Field label="Name" error={submit.fieldErrors.name}>
          {(id, d) => <input id={id} aria-describedby={d} name="name" value={v.name} onChange={set('name')} required data-autofocus={editing || undefined} />}
        </Field>
        <Field label="Description" error={submit.fieldErrors.description}>
          {(id, d) => <textarea id={id} aria-describedby={d} name="description" rows={3} value={v.description} onChange={set('description')} />}
        </Field>
        <div className="row3">
          <Field label="Model provider" error={submit.fieldErrors.model}>
            {(id, d) => <input id={id} aria-describedby={d} name="provider" value={v.provider} onChange={set('provider')} required />}
          </Field>
          <Field label="Model name">{(id) => <input id={id} name="model" value={v.model} onChange={set('model')} required />}</Field>
          <Field label="Temperature">
            {(id) => <input id={id} name="temperature" inputMode="decimal" value={v.temperature} onChange={set('temperature')} placeholder="default" />}
          </Field>
        </div>
        <Field label="Tags" error={submit.fieldErrors.tags} hint="comma-separated">
          {(id, d) => <input id={id} aria-describedby={d} name="tags" value={v.tags} onChange={set('tags')} />}
        </Field>
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={submit.busy || submit.conflict}>
            {editing ? 'Save' : 'Create'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

// ---------------------------------------------------------------- MCP servers

export function McpServerForm({ api, store, current, onClose }: FormProps<McpServer>) {
  const editing = current !== undefined;
  const initial = (s?: McpServer) => ({
    id: s?.id ?? '',
    name: s?.name ?? '',
    url: s?.url ?? '',
    transport: s?.transport ?? 'streamable-http',
    enabled: s?.enabled ?? true,
    headers: '',
  });
  const [base, setBase] = useState(current);
  const [v, setV] = useState(initial(current));
  const submit = useSubmit();
  const set = (k: 'id' | 'name' | 'url' | 'transport' | 'headers') => (e: { target: { value: string } }) => setV({ ...v, [k]: e.target.value });

  const parseHeaders = (): Record<string, string> | undefined => {
    if (v.headers.trim() === '') return undefined;
    const out: Record<string, string> = {};
    for (const line of v.headers.split('\n')) {
      const colon = line.indexOf(':');
      if (line.trim() === '') continue;
      if (colon < 1) throw new Error(`headers: "${line.trim()}" is not "Name: value"`);
      out[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
    }
    return out;
  };

  const reload = () =>
    void submit.run(async () => {
      const fresh = await api.get<McpServer>(`/mcp-servers/${encodeURIComponent(current!.id)}`);
      store.put('mcp_server', fresh.id, fresh);
      setBase(fresh);
      setV(initial(fresh));
    });

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit.run(async () => {
      const headers = parseHeaders();
      if (!editing) {
        const { body } = await api.request<McpServer>('POST', '/mcp-servers', {
          body: { id: v.id.trim(), name: v.name, url: v.url.trim(), transport: v.transport, enabled: v.enabled, ...(headers ? { headers } : {}) },
        });
        store.put('mcp_server', body.id, body);
      } else {
        const patch: Record<string, unknown> = {};
        if (v.name !== base!.name) patch.name = v.name;
        if (v.url.trim() !== base!.url) patch.url = v.url.trim();
        if (v.transport !== base!.transport) patch.transport = v.transport;
        if (v.enabled !== base!.enabled) patch.enabled = v.enabled;
        if (headers) patch.headers = headers;
        if (Object.keys(patch).length > 0) {
          const { body } = await api.request<McpServer>('PATCH', `/mcp-servers/${encodeURIComponent(base!.id)}`, { body: patch, ifMatch: base!.version });
          store.put('mcp_server', body.id, body);
        }
      }
      onClose();
    });
  };

  return (
    <Dialog title={editing ? `Edit MCP server ${current.id}` : 'New MCP server'} onClose={onClose} testId="mcp-form">
      <form onSubmit={onSubmit} noValidate>
        {submit.conflict && <ConflictNotice onReload={reload} busy={submit.busy} />}
        {submit.message && <ErrorNotice message={submit.message} />}
        {!editing && (
          <Field label="ID" error={submit.fieldErrors.id} hint="lowercase slug, e.g. github">
            {(id, d) => <input id={id} aria-describedby={d} name="id" value={v.id} onChange={set('id')} required data-autofocus />}
          </Field>
        )}
        <Field label="Name" error={submit.fieldErrors.name}>
          {(id, d) => <input id={id} aria-describedby={d} name="name" value={v.name} onChange={set('name')} required data-autofocus={editing || undefined} />}
        </Field>
        <Field label="URL" error={submit.fieldErrors.url} hint="the MCP endpoint, http(s)">
          {(id, d) => <input id={id} aria-describedby={d} name="url" type="url" value={v.url} onChange={set('url')} required />}
        </Field>
        <div className="row2">
          <Field label="Transport" error={submit.fieldErrors.transport}>
            {(id) => (
              <select id={id} name="transport" value={v.transport} onChange={set('transport')}>
                <option value="streamable-http">streamable-http</option>
                <option value="sse">sse</option>
              </select>
            )}
          </Field>
          <div className="field checkbox">
            <label>
              <input type="checkbox" name="enabled" checked={v.enabled} onChange={(e) => setV({ ...v, enabled: e.target.checked })} /> Enabled
            </label>
          </div>
        </div>
        <Field
          label={editing ? 'Replace headers' : 'Headers'}
          error={submit.fieldErrors.headers}
          hint={
            editing
              ? `stored encrypted, never shown${Object.keys(base?.headers ?? {}).length ? ` (now: ${Object.keys(base!.headers).join(', ')})` : ''}; leave empty to keep them`
              : 'one "Name: value" per line; stored encrypted'
          }
        >
          {(id, d) => <textarea id={id} aria-describedby={d} name="headers" rows={2} value={v.headers} onChange={set('headers')} spellCheck={false} />}
        </Field>
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={submit.busy || submit.conflict}>
            {editing ? 'Save' : 'Create'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

// ---------------------------------------------------------------- trust rules

export function TrustRuleForm({ api, store, current, onClose, agents, servers }: FormProps<TrustRule> & { agents: string[]; servers: string[] }) {
  const editing = current !== undefined;
  const initial = (r?: TrustRule) => ({
    agentId: r?.agentId ?? agents[0] ?? '',
    mcpServerId: r?.mcpServerId ?? servers[0] ?? '',
    toolPattern: r?.toolPattern ?? '*',
    effect: r?.effect ?? 'allow',
    priority: String(r?.priority ?? 0),
    description: r?.description ?? '',
  });
  const [base, setBase] = useState(current);
  const [v, setV] = useState(initial(current));
  const submit = useSubmit();
  const set = (k: keyof typeof v) => (e: { target: { value: string } }) => setV({ ...v, [k]: e.target.value });

  const reload = () =>
    void submit.run(async () => {
      const fresh = await api.get<TrustRule>(`/trust-rules/${encodeURIComponent(current!.id)}`);
      store.put('trust_rule', fresh.id, fresh);
      setBase(fresh);
      setV(initial(fresh));
    });

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit.run(async () => {
      const fields = {
        agentId: v.agentId,
        mcpServerId: v.mcpServerId,
        toolPattern: v.toolPattern.trim(),
        effect: v.effect,
        priority: Number(v.priority),
        description: v.description,
      };
      if (!editing) {
        const { body } = await api.request<TrustRule>('POST', '/trust-rules', { body: fields });
        store.put('trust_rule', body.id, body);
      } else {
        const patch: Record<string, unknown> = {};
        for (const [k, value] of Object.entries(fields)) if (value !== (base as unknown as Record<string, unknown>)[k]) patch[k] = value;
        if (Object.keys(patch).length > 0) {
          const { body } = await api.request<TrustRule>('PATCH', `/trust-rules/${base!.id}`, { body: patch, ifMatch: base!.version });
          store.put('trust_rule', body.id, body);
        }
      }
      onClose();
    });
  };

  return (
    <Dialog title={editing ? 'Edit trust rule' : 'New trust rule'} onClose={onClose} testId="trust-form">
      <form onSubmit={onSubmit} noValidate>
        {submit.conflict && <ConflictNotice onReload={reload} busy={submit.busy} />}
        {submit.message && <ErrorNotice message={submit.message} />}
        <div className="row2">
          <Field label="Agent" error={submit.fieldErrors.agentId}>
            {(id) => (
              <select id={id} name="agentId" value={v.agentId} onChange={set('agentId')} data-autofocus>
                {[...new Set([v.agentId, ...agents])].filter(Boolean).map((a) => (
                  <option key={a}>{a}</option>
                ))}
              </select>
            )}
          </Field>
          <Field label="MCP server" error={submit.fieldErrors.mcpServerId}>
            {(id) => (
              <select id={id} name="mcpServerId" value={v.mcpServerId} onChange={set('mcpServerId')}>
                {[...new Set([v.mcpServerId, ...servers])].filter(Boolean).map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <div className="row3">
          <Field label="Tool pattern" error={submit.fieldErrors.toolPattern} hint="glob, e.g. issues.*">
            {(id, d) => <input id={id} aria-describedby={d} name="toolPattern" value={v.toolPattern} onChange={set('toolPattern')} />}
          </Field>
          <Field label="Effect" error={submit.fieldErrors.effect}>
            {(id) => (
              <select id={id} name="effect" value={v.effect} onChange={set('effect')}>
                <option value="allow">allow</option>
                <option value="deny">deny</option>
                <option value="require_approval">require_approval</option>
              </select>
            )}
          </Field>
          <Field label="Priority" error={submit.fieldErrors.priority}>
            {(id) => <input id={id} name="priority" inputMode="numeric" value={v.priority} onChange={set('priority')} />}
          </Field>
        </div>
        <Field label="Description" error={submit.fieldErrors.description}>
          {(id) => <textarea id={id} name="description" rows={2} value={v.description} onChange={set('description')} />}
        </Field>
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={submit.busy || submit.conflict}>
            {editing ? 'Save' : 'Create'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

// ---------------------------------------------------------------- prompts

export function PromptForm({
  api,
  store,
  agentId,
  latest,
  onClose,
}: {
  api: Api;
  store: RegistryStore;
  agentId: string;
  latest?: Prompt;
  onClose: () => void;
}) {
  const [template, setTemplate] = useState(latest?.template ?? '');
  const [description, setDescription] = useState('');
  const [variables, setVariables] = useState(latest?.variables.join(', ') ?? '');
  const [activate, setActivate] = useState(false);
  const submit = useSubmit();
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit.run(async () => {
      const { body } = await api.request<Prompt>('POST', `/agents/${encodeURIComponent(agentId)}/prompts`, {
        body: { template, description, variables: splitList(variables), activate },
      });
      store.put('prompt', `${body.agentId}/${body.version}`, body);
      onClose();
    });
  };
  return (
    <Dialog title={`New prompt version for ${agentId}`} onClose={onClose} wide testId="prompt-form">
      <form onSubmit={onSubmit} noValidate>
        {submit.message && <ErrorNotice message={submit.message} />}
        <Field label="Template" error={submit.fieldErrors.template} hint={latest ? `starts from version ${latest.version}` : undefined}>
          {(id, d) => (
            <textarea
              id={id}
              aria-describedby={d}
              className="mono"
              rows={10}
              value={template}
              onChange={(e) => setTemplate(e.target.value)}
              data-autofocus
              spellCheck={false}
            />
          )}
        </Field>
        <div className="row2">
          <Field label="Variables" error={submit.fieldErrors.variables} hint="comma-separated identifiers">
            {(id, d) => <input id={id} aria-describedby={d} value={variables} onChange={(e) => setVariables(e.target.value)} />}
          </Field>
          <Field label="Description" error={submit.fieldErrors.description}>
            {(id) => <input id={id} value={description} onChange={(e) => setDescription(e.target.value)} />}
          </Field>
        </div>
        <div className="field checkbox">
          <label>
            <input type="checkbox" checked={activate} onChange={(e) => setActivate(e.target.checked)} /> Activate this version
          </label>
        </div>
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={submit.busy}>
            Create version
          </button>
        </div>
      </form>
    </Dialog>
  );
}

// ---------------------------------------------------------------- delete

/** Confirms and deletes one row, with its version as If-Match (412 → conflict + Reload). */
export function ConfirmDelete(props: {
  api: Api;
  store: RegistryStore;
  kind: Kind;
  rowKey: string;
  label: string;
  path: string;
  version?: number;
  /** The row's current version after a Reload. */
  latestVersion: () => number | undefined;
  onClose: () => void;
}) {
  const [version, setVersion] = useState(props.version);
  const submit = useSubmit();
  const reload = () =>
    void submit.run(async () => {
      await props.store.reload(props.kind, props.rowKey);
      setVersion(props.latestVersion());
    });
  return (
    <Dialog title={`Delete ${props.label}?`} onClose={props.onClose} testId="confirm-delete">
      {submit.conflict && <ConflictNotice onReload={reload} busy={submit.busy} />}
      {submit.message && <ErrorNotice message={submit.message} />}
      <p>This cannot be undone.</p>
      <div className="actions">
        <button type="button" onClick={props.onClose} data-autofocus>
          Cancel
        </button>
        <button
          type="button"
          className="danger"
          disabled={submit.busy || submit.conflict}
          onClick={() =>
            void submit.run(async () => {
              await props.api.request('DELETE', props.path, { ifMatch: version });
              props.store.drop(props.kind, props.rowKey);
              props.onClose();
            })
          }
        >
          Delete
        </button>
      </div>
    </Dialog>
  );
}
