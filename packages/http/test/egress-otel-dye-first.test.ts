import { tenantDispatcher } from '@dye/http';
import { defineOtelEgressSuite, egress, startOtel } from './adversarial/otel-egress.js';

// Dye's hop check subscribes to undici's request channel first: OTel's
// instrumentation injects after it, so only the OTel baggage Dye sets around
// each send keeps the tenant away from the outside host.
const dispatcher = tenantDispatcher(egress);
startOtel();
defineOtelEgressSuite('Dye subscribed first', () => dispatcher);
