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

/**
 * RFC 2119 keywords and the level each stands for. One alternation, longest first, so that "MUST
 * NOT" is one match and never also a "MUST".
 */
const KEYWORDS = /\b(MUST NOT|SHALL NOT|SHOULD NOT|MUST|SHALL|REQUIRED|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b/g;
const LEVEL_OF: Readonly<Record<string, Requirement['level']>> = {
  'MUST NOT': 'MUST NOT', 'SHALL NOT': 'MUST NOT', MUST: 'MUST', SHALL: 'MUST', REQUIRED: 'MUST',
  'SHOULD NOT': 'SHOULD NOT', SHOULD: 'SHOULD', RECOMMENDED: 'SHOULD', MAY: 'MAY', OPTIONAL: 'MAY',
};

/** The distinct levels of the RFC 2119 keywords in a text, in the order they first appear. */
export function levelsIn(text: string): Requirement['level'][] {
  const out: Requirement['level'][] = [];
  for (const m of text.matchAll(KEYWORDS)) {
    const level = LEVEL_OF[m[1] as string] as Requirement['level'];
    if (!out.includes(level)) out.push(level);
  }
  return out;
}

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
  /** definitions whose keywords carry more than one level (one normative statement per ID) */
  multipleLevels: string[];
}

export function extractRequirements(markdown: string): Extraction {
  const groups = profileGroups(markdown);
  const lines = markdown.split('\n');
  const requirements: Requirement[] = [];
  const seen = new Set<string>();
  const duplicates: string[] = [];
  const withoutLevel: string[] = [];
  const multipleLevels: string[] = [];
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
    const levels = levelsIn(body);
    const level = levels[0];
    if (!level) {
      withoutLevel.push(id);
      return;
    }
    if (levels.length > 1) multipleLevels.push(`${id} (${levels.join(', ')})`);
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
  return { requirements, duplicates, undefinedCitations, withoutLevel, multipleLevels };
}

export function renderRequirementsJson(ex: Extraction): string {
  return JSON.stringify({ spec: 'Live Matrix Streaming Protocol', version: 1, generatedFrom: 'spec/SPEC.md', requirements: ex.requirements }, null, 2) + '\n';
}
