/**
 * @module metrics
 * Counters and gauges in the Prometheus text exposition format, for the broker ([LM-BRK-5]) and
 * the fleet service: `@livematrix/spec/metrics`.
 */
import { createServer, type Server } from 'node:http';

/** Labels as Prometheus writes them; quotes, backslashes and newlines in values become `_`. */
function labelKey(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',');
}

export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly gauges = new Map<string, { help: string; value: () => number | readonly [Record<string, string>, number][] }>();

  inc(name: string, help: string, labels: Record<string, string> = {}, by = 1): void {
    let c = this.counters.get(name);
    if (!c) {
      c = { help, values: new Map() };
      this.counters.set(name, c);
    }
    const key = labelKey(labels);
    c.values.set(key, (c.values.get(key) ?? 0) + by);
  }

  /** A gauge read at each render: one value, or one per label set. */
  gauge(name: string, help: string, value: () => number | readonly [Record<string, string>, number][]): void {
    this.gauges.set(name, { help, value });
  }

  /** Value of a counter (sum over labels, or one label set). */
  get(name: string, labels?: Record<string, string>): number {
    const c = this.counters.get(name);
    if (!c) return 0;
    if (!labels) return [...c.values.values()].reduce((a, b) => a + b, 0);
    return c.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    const out: string[] = [];
    for (const [name, c] of this.counters) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [k, v] of c.values) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
    }
    for (const [name, g] of this.gauges) {
      out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
      const v = g.value();
      if (typeof v === 'number') out.push(`${name} ${v}`);
      else for (const [labels, x] of v) out.push(`${name}{${labelKey(labels)}} ${x}`);
    }
    return out.join('\n') + '\n';
  }

  /** Serves GET /metrics on host:port; resolves with the server and its port. */
  async serve(port: number, host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
    const server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.render());
      } else {
        res.writeHead(404);
        res.end('not found\n');
      }
    });
    await new Promise<void>((r, j) => {
      server.once('error', j);
      server.listen(port, host, () => r());
    });
    const a = server.address();
    return { server, port: typeof a === 'object' && a ? a.port : port };
  }
}
