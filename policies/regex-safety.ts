// Path regexes run in the proxy on every request, on paths the client
// chooses, in a backtracking engine (V8's Irregexp). Linear-time engines
// (RE2) need a native binary the `re2` package downloads from GitHub at
// install; so instead the constructs that make backtracking exponential are
// refused at admission and never compiled by the proxy (issue 13 L2):
//   - a repeated group that itself repeats or alternates: (a+)+, (\w+\s?)*,
//     /api(/?[a-z0-9]+)*, (a|aa)+ — the nested-quantifier family;
//   - backreferences (\1, \k<name>), which no linear engine supports;
//   - lookarounds, for the same reason.
// What is left (star height 1, no backreferences) matches like RE2's subset,
// minus alternation under repetition.

/** Why `source` could backtrack catastrophically, or undefined when it cannot. */
export function backtrackingRisk(source: string): string | undefined {
  interface Frame {
    /** The group holds a repeating quantifier or an alternation, at any depth. */
    branchy: boolean;
  }
  const stack: Frame[] = [{ branchy: false }];
  /** The atom a following quantifier applies to: a group (with its contents' nature), or a single character/class. */
  let atom: { group: boolean; branchy: boolean } | undefined;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    const top = stack[stack.length - 1]!;
    switch (c) {
      case '\\': {
        const next = source[i + 1] ?? '';
        if (/[1-9]/.test(next) || (next === 'k' && source[i + 2] === '<')) return `backreferences (\\${next}…) are not supported`;
        i++;
        atom = { group: false, branchy: false };
        break;
      }
      case '[': {
        // A character class is one atom, whatever it holds.
        let j = i + 1;
        if (source[j] === '^') j++;
        if (source[j] === ']') j++;
        while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
        i = j;
        atom = { group: false, branchy: false };
        break;
      }
      case '(': {
        if (/^\(\?<?[=!]/.test(source.slice(i, i + 4))) return 'lookarounds ((?=…), (?!…), (?<=…), (?<!…)) are not supported';
        stack.push({ branchy: false });
        atom = undefined;
        break;
      }
      case ')': {
        const closed = stack.length > 1 ? stack.pop()! : { branchy: false };
        atom = { group: true, branchy: closed.branchy };
        // A repetition or alternation anywhere inside makes every enclosing group branchy.
        if (closed.branchy) stack[stack.length - 1]!.branchy = true;
        break;
      }
      case '|':
        top.branchy = true;
        atom = undefined;
        break;
      case '*':
      case '+':
      case '?':
      case '{': {
        let repeats = c !== '?';
        if (c === '{') {
          const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i));
          if (!m) {
            atom = { group: false, branchy: false };
            break;
          }
          repeats = m[2] !== undefined ? m[3] === '' || Number(m[3]) > 1 : Number(m[1]) > 1;
          i += m[0].length - 1;
        }
        if (source[i + 1] === '?') i++;
        if (repeats && atom?.group && atom.branchy)
          return 'a repeated group that itself repeats or alternates (nested quantifiers, e.g. (a+)+ or (a|b)*) can backtrack exponentially; flatten it, e.g. [a-z0-9/]*';
        if (repeats) top.branchy = true;
        atom = undefined;
        break;
      }
      default:
        atom = { group: false, branchy: false };
    }
  }
  return undefined;
}
