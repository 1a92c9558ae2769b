export interface Prerequisite {
  name: string;
  candidates: string[];
  apt: string;
  why: string;
}
export const PREREQUISITES: Prerequisite[];
export function missingPrograms(): Prerequisite[];
export function installCommand(missing: Prerequisite[]): string;
