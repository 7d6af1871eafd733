import type { vscodeStub as S } from "./setup";
export const stub = (globalThis as Record<string, unknown>).__vscodeStub as typeof S;
