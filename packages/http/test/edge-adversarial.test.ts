import { defineEdgeSuite } from './adversarial/suite.js';

defineEdgeSuite('without OpenTelemetry');
