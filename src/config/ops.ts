import { int, str, type Parsed } from './fields';

/** The `ops` section: /metrics, /healthz, /readyz per process (src/metrics/server.ts). Port 0 = any free port. */
export const opsVars = {
  METRICS_HOST: str('127.0.0.1'),
  DATAFLOW_METRICS_PORT: int(9461, 0, 65535),
  QUANT_METRICS_PORT: int(9462, 0, 65535),
  INTAKE_METRICS_PORT: int(9463, 0, 65535),
  WORKER_METRICS_PORT: int(9464, 0, 65535),
  EXCHANGE_SIM_METRICS_PORT: int(9465, 0, 65535),
  BAR_STORE_METRICS_PORT: int(9467, 0, 65535),
  /** Temporal SDK (Core) Prometheus exporter of the trade worker; 0 = off. */
  WORKER_SDK_METRICS_PORT: int(9466, 0, 65535),
};

/** The pipeline's processes, each with its own operations port. */
export type OpsRole = 'dataflow' | 'quant' | 'signal-intake' | 'trade-worker' | 'exchange-sim' | 'bar-store';

/** Where each process serves /metrics, /healthz and /readyz. */
export interface OpsConfig {
  host: string;
  ports: Record<OpsRole, number>;
  /** host:port of the trade worker's Temporal SDK metrics exporter, or undefined when off. */
  sdkMetricsAddress: string | undefined;
}

/**
 * Environment that moves every process's operations endpoint to a free port and turns the SDK exporter off:
 * for tests and benchmarks that run several copies of a process beside each other (and beside `npm start`).
 */
export const EPHEMERAL_OPS_ENV: Readonly<Record<string, string>> = {
  DATAFLOW_METRICS_PORT: '0',
  QUANT_METRICS_PORT: '0',
  INTAKE_METRICS_PORT: '0',
  WORKER_METRICS_PORT: '0',
  EXCHANGE_SIM_METRICS_PORT: '0',
  BAR_STORE_METRICS_PORT: '0',
  WORKER_SDK_METRICS_PORT: '0',
};

export function opsSection(e: Parsed<typeof opsVars>): OpsConfig {
  return {
    host: e.METRICS_HOST,
    ports: {
      dataflow: e.DATAFLOW_METRICS_PORT,
      quant: e.QUANT_METRICS_PORT,
      'signal-intake': e.INTAKE_METRICS_PORT,
      'trade-worker': e.WORKER_METRICS_PORT,
      'exchange-sim': e.EXCHANGE_SIM_METRICS_PORT,
      'bar-store': e.BAR_STORE_METRICS_PORT,
    },
    sdkMetricsAddress:
      e.WORKER_SDK_METRICS_PORT === 0
        ? undefined
        : `${e.METRICS_HOST.includes(':') ? `[${e.METRICS_HOST}]` : e.METRICS_HOST}:${e.WORKER_SDK_METRICS_PORT}`,
  };
}
