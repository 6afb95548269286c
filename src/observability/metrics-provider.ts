/**
 * The hook `/metrics` on the admin listener calls (src/admin/): whatever renders the metrics
 * (Prometheus text, OpenMetrics when `accept` asks for it) implements this. Without one, `/metrics`
 * answers 404 "metrics not enabled".
 */
export interface MetricsProvider {
  /** Renders the exposition for a scrape whose `Accept` header is `accept`. */
  render(accept: string | undefined): Promise<{ contentType: string; body: string }>;
}
