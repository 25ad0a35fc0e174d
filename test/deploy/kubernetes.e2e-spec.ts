import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/app-config.js';

/**
 * The Kubernetes manifests, checked offline: each overlay is rendered with
 * `kubectl kustomize`, every object validated against the Kubernetes (and
 * prometheus-operator) schemas from the `kubernetes-models` packages, and the
 * pieces checked against each other and against the service's own config.
 */
type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function render(overlay: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', path.join('k8s', 'overlays', overlay)], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
}

/** The model class for an apiVersion/kind, e.g. apps/v1 Deployment → kubernetes-models/apps/v1/Deployment. */
async function modelFor(apiVersion: string, kind: string): Promise<new (data: unknown) => { validate(): void }> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const pkg = group === 'monitoring.coreos.com' ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models';
  const dir = group === '' ? version : `${group}/${version}`;
  const mod = (await import(`${pkg}/${dir}/${kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  const model = mod[kind] ?? mod.default;
  if (!model) throw new Error(`no model for ${apiVersion} ${kind}`);
  return model;
}

const find = (objects: K8sObject[], kind: string, name = 'agentic-registry') => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};

const documented = new Set([...readFileSync('README.md', 'utf8').matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]));

describe.each(['dev', 'production'])('k8s overlay %s', (overlay) => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render(overlay);
  });

  it('renders objects that each validate against their schema', async () => {
    expect(objects.length).toBeGreaterThan(8);
    const invalid: string[] = [];
    for (const o of objects) {
      const Model = await modelFor(o.apiVersion, o.kind);
      try {
        new Model(o).validate();
      } catch (error) {
        invalid.push(`${o.kind}/${o.metadata.name}: ${(error as Error).message}`);
      }
    }
    expect(invalid).toEqual([]);
  });

  it('has what an operator needs: service, ingress for SSE and WebSocket, PDB, network policy, migration job', () => {
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of ['Deployment', 'Service', 'Ingress', 'PodDisruptionBudget', 'NetworkPolicy', 'ConfigMap', 'Job']) expect(kinds).toContain(kind);
    if (overlay === 'production') {
      expect(kinds).toContain('HorizontalPodAutoscaler');
      expect(kinds).toContain('ServiceMonitor');
      expect(kinds).not.toContain('Secret'); // created by the operator, never in git
    } else {
      expect(find(objects, 'Secret').kind).toBe('Secret');
      expect(find(objects, 'Deployment', 'postgres').kind).toBe('Deployment');
      expect(find(objects, 'Deployment', 'redis').kind).toBe('Deployment');
    }
    const ingress = find(objects, 'Ingress').metadata.annotations!;
    expect(ingress['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
    expect(Number(ingress['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(3600);
    expect(ingress['nginx.ingress.kubernetes.io/affinity']).toBe('cookie');
  });

  it('runs hardened, probed and spread, with a grace period that covers the drain', () => {
    const deployment = find(objects, 'Deployment');
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    expect(deployment.spec.replicas).toBe(overlay === 'production' ? 3 : 1);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.startupProbe.httpGet.path).toBe('/healthz');
    expect(container.resources.requests.cpu).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
    expect(pod.topologySpreadConstraints[0].topologyKey).toBe('kubernetes.io/hostname');
    const config = find(objects, 'ConfigMap').data!;
    const preStopMs = Number(container.lifecycle.preStop.exec.command[1]) * 1000;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStopMs + Number(config.SHUTDOWN_GRACE_MS));
  });

  it('configures the service with variables it knows and accepts', () => {
    const config = find(objects, 'ConfigMap').data!;
    for (const name of Object.keys(config)) if (name !== 'NODE_ENV') expect(documented).toContain(name);
    const secrets = { SECRET_KEY: 'x'.repeat(40), BOOTSTRAP_ADMIN_KEY: `ar_${'k'.repeat(30)}`, DATABASE_URL: 'postgres://u:p@db:5432/r', REDIS_URL: 'redis://redis:6379/0' };
    const loaded = loadConfig({ ...config, ...secrets });
    expect(loaded.port).toBe(3000);
    const deployment = find(objects, 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    const secretKeys = container.env.filter((e: any) => e.valueFrom?.secretKeyRef).map((e: any) => e.name).sort();
    expect(secretKeys).toEqual(['BOOTSTRAP_ADMIN_KEY', 'DATABASE_URL', 'REDIS_URL', 'SECRET_KEY']);
    // The metrics port in the config is the one the Service and ServiceMonitor point at.
    const metricsPort = container.ports.find((p: any) => p.name === 'metrics').containerPort;
    expect(String(metricsPort)).toBe(config.METRICS_PORT);
    expect(find(objects, 'Service').spec.ports.some((p: any) => p.name === 'metrics')).toBe(true);
  });
});
