import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A span as the shop's OTLP/HTTP (JSON) exporter sent it, flattened. */
export interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  attributes: Record<string, string | number | boolean | undefined>;
}

/** A data point of a sum (counter) metric, flattened. */
export interface ReceivedPoint {
  service: string;
  metric: string;
  attributes: Record<string, string | number | boolean | undefined>;
  value: number;
}

type AnyValue = { stringValue?: string; intValue?: number | string; boolValue?: boolean; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

/**
 * A real OTLP/HTTP endpoint on loopback (`POST /v1/traces`, JSON encoding, as
 * @opentelemetry/exporter-trace-otlp-http sends), keeping every span it got.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Every export of every counter; cumulative, so the newest point per series is its value. */
  readonly points: ReceivedPoint[] = [];
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<OtlpReceiver> {
    const receiver: OtlpReceiver = new OtlpReceiver(
      createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const json = req.headers['content-type']?.includes('json');
          if (json && req.url === '/v1/traces') receiver.#collect(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          if (json && req.url === '/v1/metrics') receiver.#collectMetrics(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      }),
    );
    await new Promise<void>((resolve) => receiver.#server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #collectMetrics(body: {
    resourceMetrics?: {
      resource?: { attributes?: KeyValue[] };
      scopeMetrics?: {
        metrics?: { name: string; sum?: { dataPoints?: { attributes?: KeyValue[]; asInt?: number | string; asDouble?: number }[] } }[];
      }[];
    }[];
  }): void {
    for (const resourceMetric of body.resourceMetrics ?? []) {
      const service = String(flatten(resourceMetric.resource?.attributes)['service.name']);
      for (const scope of resourceMetric.scopeMetrics ?? []) {
        for (const metric of scope.metrics ?? []) {
          for (const point of metric.sum?.dataPoints ?? []) {
            this.points.push({
              service,
              metric: metric.name,
              attributes: flatten(point.attributes),
              value: Number(point.asInt ?? point.asDouble ?? 0),
            });
          }
        }
      }
    }
  }

  #collect(body: {
    resourceSpans?: {
      resource?: { attributes?: KeyValue[] };
      scopeSpans?: { spans?: { name: string; traceId: string; attributes?: KeyValue[] }[] }[];
    }[];
  }): void {
    for (const resourceSpan of body.resourceSpans ?? []) {
      const service = String(flatten(resourceSpan.resource?.attributes)['service.name']);
      for (const scope of resourceSpan.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({ service, name: span.name, traceId: span.traceId, attributes: flatten(span.attributes) });
        }
      }
    }
  }
}

function flatten(attributes: KeyValue[] | undefined): Record<string, string | number | boolean | undefined> {
  return Object.fromEntries(
    (attributes ?? []).map(({ key, value }) => [key, value.stringValue ?? value.boolValue ?? value.doubleValue ?? value.intValue]),
  );
}
