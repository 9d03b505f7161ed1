import { tenantDispatcher } from '@dye/http';
import { defineOtelEgressSuite, egress, startOtel } from './adversarial/otel-egress.js';

// OpenTelemetry subscribes to undici's request channel before Dye's hop check.
startOtel();
const dispatcher = tenantDispatcher(egress);
defineOtelEgressSuite('OTel instrumentation registered first', () => dispatcher);
