export {
  type Blocker,
  type Eta,
  estimate,
  interleaved,
  type PipelineSnapshot,
  type WorkToEstimate,
} from './eta.js';
export { type BatchShape, type ForecastDeps, Forecaster } from './forecaster.js';
export { kindOf, type ProcessingFigure, ProcessingTimes, type TaskKind } from './processing.js';
