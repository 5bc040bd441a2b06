/**
 * Extracts the requirement IDs of SPEC.md (SPEC.md preamble: an ID in square brackets at the
 * start of a paragraph defines a requirement; elsewhere it cites one).
 */
export interface Requirement {
  id: string;
  level: 'MUST' | 'MUST NOT' | 'SHOULD' | 'SHOULD NOT' | 'MAY';
  group: string;
  section: string;
  text: string;
  profiles: string[];
}

const LEVELS: [RegExp, Requirement['level']][] = [
  [/\bMUST NOT\b|\bSHALL NOT\b/, 'MUST NOT'],
  [/\bMUST\b|\bSHALL\b|\bREQUIRED\b/, 'MUST'],
  [/\bSHOULD NOT\b/, 'SHOULD NOT'],
  [/\bSHOULD\b|\bRECOMMENDED\b/, 'SHOULD'],
  [/\bMAY\b|\bOPTIONAL\b/, 'MAY'],
];

/** Groups each profile covers, read from the profile table of SPEC.md §1. */
export function profileGroups(markdown: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of markdown.matchAll(/^\| ([A-Z]) \([a-z]+\) \|[^|]*\| ([A-Z, ]+) \|$/gm)) {
    out[m[1] as string] = (m[2] as string).split(',').map((g) => g.trim());
  }
  return out;
}

export const ID_PATTERN = /\[(LM-[A-Z]+-\d+)\]/g;

export interface Extraction {
  requirements: Requirement[];
  duplicates: string[];
  /** IDs cited somewhere in the text but never defined */
  undefinedCitations: string[];
  /** definitions with no RFC 2119 keyword */
  withoutLevel: string[];
}

export function extractRequirements(markdown: string): Extraction {
  const groups = profileGroups(markdown);
  const lines = markdown.split('\n');
  const requirements: Requirement[] = [];
  const seen = new Set<string>();
  const duplicates: string[] = [];
  const withoutLevel: string[] = [];
  let section = '';
  let para: string[] = [];
  let inCode = false;
  const flush = () => {
    const text = para.join(' ').replace(/\s+/g, ' ').trim();
    para = [];
    const m = /^\[(LM-([A-Z]+)-\d+)\]\s+(.*)$/.exec(text);
    if (!m) return;
    const [, id, group, body] = m as unknown as [string, string, string, string];
    if (seen.has(id)) duplicates.push(id);
    seen.add(id);
    const level = LEVELS.find(([re]) => re.test(body))?.[1];
    if (!level) {
      withoutLevel.push(id);
      return;
    }
    const profiles = Object.entries(groups).filter(([, gs]) => gs.includes(group)).map(([p]) => p);
    requirements.push({ id, level, group, section, text: body, profiles });
  };
  for (const line of lines) {
    if (line.startsWith('```')) {
      inCode = !inCode;
      flush();
      continue;
    }
    if (inCode) continue;
    const h = /^(#{2,4})\s+(.*)$/.exec(line);
    if (h) {
      flush();
      section = (h[2] as string).trim();
      continue;
    }
    if (line.trim() === '' || line.startsWith('|') || line.startsWith('- ')) {
      flush();
      if (line.startsWith('- ') || line.startsWith('|')) continue;
      continue;
    }
    para.push(line.trim());
  }
  flush();
  const cited = new Set<string>();
  for (const m of markdown.matchAll(ID_PATTERN)) cited.add(m[1] as string);
  const undefinedCitations = [...cited].filter((id) => !seen.has(id)).sort();
  return { requirements, duplicates, undefinedCitations, withoutLevel };
}

export function renderRequirementsJson(ex: Extraction): string {
  return JSON.stringify({ spec: 'Live Matrix Streaming Protocol', version: 1, generatedFrom: 'spec/SPEC.md', requirements: ex.requirements }, null, 2) + '\n';
}
