using System.Text;

namespace Pip;

/// <summary>A word of a text: a maximal run of letters.</summary>
internal readonly record struct WordSpan(int Offset, int Length);

/// <summary>A single-character edit of a word: where, what kind, and the letter (for replace and insert).</summary>
internal readonly record struct EditOp(PerturbationKind Kind, int Position, char Letter);

/// <summary>The capitalisation pattern of a word.</summary>
internal enum CasePattern
{
    Lower,
    Title,
    Upper,
    Mixed,
}

/// <summary>Finds words, enumerates and applies single-character edits, keeping capitalisation.</summary>
internal static class WordEditor
{
    /// <summary>The maximal runs of letters of <paramref name="text"/>.</summary>
    public static List<WordSpan> FindWords(string text)
    {
        var words = new List<WordSpan>();
        int i = 0;
        while (i < text.Length)
        {
            if (!char.IsLetter(text[i]))
            {
                i++;
                continue;
            }

            int start = i;
            while (i < text.Length && char.IsLetter(text[i]))
            {
                i++;
            }

            words.Add(new WordSpan(start, i - start));
        }

        return words;
    }

    /// <summary>Whether a word is made of ASCII letters only.</summary>
    public static bool IsAsciiLetters(ReadOnlySpan<char> word)
    {
        foreach (char c in word)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= 'A' and <= 'Z')))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The capitalisation pattern of an ASCII word.</summary>
    public static CasePattern GetCasePattern(ReadOnlySpan<char> word)
    {
        int upper = 0;
        foreach (char c in word)
        {
            if (char.IsAsciiLetterUpper(c))
            {
                upper++;
            }
        }

        if (upper == 0)
        {
            return CasePattern.Lower;
        }

        if (upper == word.Length)
        {
            return CasePattern.Upper;
        }

        return upper == 1 && char.IsAsciiLetterUpper(word[0]) ? CasePattern.Title : CasePattern.Mixed;
    }

    /// <summary>Length of a word of length <paramref name="length"/> after <paramref name="op"/>.</summary>
    public static int EditedLength(int length, EditOp op) => op.Kind switch
    {
        PerturbationKind.Insert => length + 1,
        PerturbationKind.Delete => length - 1,
        _ => length,
    };

    /// <summary>Writes <paramref name="word"/> with <paramref name="op"/> applied (raw: no case handling) to <paramref name="destination"/>.</summary>
    public static void ApplyRaw(ReadOnlySpan<char> word, EditOp op, Span<char> destination)
    {
        switch (op.Kind)
        {
            case PerturbationKind.Swap:
                word.CopyTo(destination);
                destination[op.Position] = word[op.Position + 1];
                destination[op.Position + 1] = word[op.Position];
                break;
            case PerturbationKind.Replace:
                word.CopyTo(destination);
                destination[op.Position] = op.Letter;
                break;
            case PerturbationKind.Insert:
                word[..op.Position].CopyTo(destination);
                destination[op.Position] = op.Letter;
                word[op.Position..].CopyTo(destination[(op.Position + 1)..]);
                break;
            case PerturbationKind.Delete:
                word[..op.Position].CopyTo(destination);
                word[(op.Position + 1)..].CopyTo(destination[op.Position..]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op.Kind, "Unknown perturbation kind.");
        }
    }

    /// <summary>The edited word, keeping the capitalisation pattern of <paramref name="word"/>.</summary>
    /// <remarks>
    /// Lower-case, Title-case and UPPER-case words keep their pattern ("Later" → "Alter", "LATER" → "ALTER"); for a
    /// mixed-case word the edit moves the characters with their case and a new letter takes the case of the letter it
    /// replaces or follows.
    /// </remarks>
    public static string Apply(string word, EditOp op)
    {
        CasePattern pattern = GetCasePattern(word);
        int length = EditedLength(word.Length, op);
        if (pattern == CasePattern.Mixed)
        {
            bool upper = op.Kind switch
            {
                PerturbationKind.Replace => char.IsAsciiLetterUpper(word[op.Position]),
                PerturbationKind.Insert => char.IsAsciiLetterUpper(word[Math.Max(0, op.Position - 1)]),
                _ => false,
            };
            var raw = op with { Letter = upper ? char.ToUpperInvariant(op.Letter) : op.Letter };
            return string.Create(length, (word, raw), static (span, s) => ApplyRaw(s.word, s.raw, span));
        }

        return string.Create(length, (word, op, pattern), static (span, s) =>
        {
            Span<char> lower = stackalloc char[s.word.Length];
            Lexicon.TryLowerAscii(s.word, lower);
            ApplyRaw(lower, s.op, span);
            switch (s.pattern)
            {
                case CasePattern.Upper:
                    for (int i = 0; i < span.Length; i++)
                    {
                        span[i] = char.ToUpperInvariant(span[i]);
                    }

                    break;
                case CasePattern.Title:
                    span[0] = char.ToUpperInvariant(span[0]);
                    break;
            }
        });
    }

    /// <summary>Adds every distinct edit of an allowed kind of the lower-case <paramref name="lower"/> that is a lexicon word.</summary>
    public static void CollectRealWordEdits(ReadOnlySpan<char> lower, ReadOnlySpan<PerturbationKind> kinds, Lexicon lexicon, List<EditOp> into)
    {
        Span<char> buffer = stackalloc char[lower.Length + 1];
        foreach (PerturbationKind kind in kinds)
        {
            switch (kind)
            {
                case PerturbationKind.Swap:
                    for (int i = 0; i + 1 < lower.Length; i++)
                    {
                        if (lower[i] != lower[i + 1])
                        {
                            TryAdd(new EditOp(PerturbationKind.Swap, i, '\0'), lower, buffer, lexicon, into);
                        }
                    }

                    break;
                case PerturbationKind.Replace:
                    for (int i = 0; i < lower.Length; i++)
                    {
                        for (char c = 'a'; c <= 'z'; c++)
                        {
                            if (c != lower[i])
                            {
                                TryAdd(new EditOp(PerturbationKind.Replace, i, c), lower, buffer, lexicon, into);
                            }
                        }
                    }

                    break;
                case PerturbationKind.Insert:
                    for (int i = 0; i <= lower.Length; i++)
                    {
                        for (char c = 'a'; c <= 'z'; c++)
                        {
                            // Inserting c right after a c gives the same word as inserting it before: count it once.
                            if (i == 0 || lower[i - 1] != c)
                            {
                                TryAdd(new EditOp(PerturbationKind.Insert, i, c), lower, buffer, lexicon, into);
                            }
                        }
                    }

                    break;
                case PerturbationKind.Delete:
                    for (int i = 0; i < lower.Length && lower.Length > 1; i++)
                    {
                        // Deleting either of two equal neighbours gives the same word: count it once.
                        if (i == 0 || lower[i - 1] != lower[i])
                        {
                            TryAdd(new EditOp(PerturbationKind.Delete, i, '\0'), lower, buffer, lexicon, into);
                        }
                    }

                    break;
            }
        }

        static void TryAdd(EditOp op, ReadOnlySpan<char> lower, Span<char> buffer, Lexicon lexicon, List<EditOp> into)
        {
            Span<char> edited = buffer[..EditedLength(lower.Length, op)];
            ApplyRaw(lower, op, edited);
            if (lexicon.Contains(edited))
            {
                into.Add(op);
            }
        }
    }

    /// <summary>A random edit of <paramref name="lower"/> among the allowed kinds that can change it, or null when none can.</summary>
    public static EditOp? RandomEdit(ReadOnlySpan<char> lower, ReadOnlySpan<PerturbationKind> kinds, Random random)
    {
        Span<PerturbationKind> usable = stackalloc PerturbationKind[kinds.Length];
        int count = 0;
        foreach (PerturbationKind kind in kinds)
        {
            if ((kind != PerturbationKind.Swap || HasSwap(lower)) && (kind != PerturbationKind.Delete || lower.Length > 1))
            {
                usable[count++] = kind;
            }
        }

        if (count == 0)
        {
            return null;
        }

        PerturbationKind chosen = usable[random.Next(count)];
        switch (chosen)
        {
            case PerturbationKind.Swap:
            {
                int swaps = 0;
                for (int i = 0; i + 1 < lower.Length; i++)
                {
                    swaps += lower[i] != lower[i + 1] ? 1 : 0;
                }

                int pick = random.Next(swaps);
                for (int i = 0; i + 1 < lower.Length; i++)
                {
                    if (lower[i] != lower[i + 1] && pick-- == 0)
                    {
                        return new EditOp(PerturbationKind.Swap, i, '\0');
                    }
                }

                throw new InvalidOperationException("Unreachable: a swap position was counted.");
            }

            case PerturbationKind.Replace:
            {
                int position = random.Next(lower.Length);
                char letter = (char)('a' + random.Next(25));
                if (letter >= lower[position])
                {
                    letter++;
                }

                return new EditOp(PerturbationKind.Replace, position, letter);
            }

            case PerturbationKind.Delete:
                return new EditOp(PerturbationKind.Delete, random.Next(lower.Length), '\0');

            default:
                return new EditOp(PerturbationKind.Insert, random.Next(lower.Length + 1), (char)('a' + random.Next(26)));
        }
    }

    private static bool HasSwap(ReadOnlySpan<char> lower)
    {
        for (int i = 0; i + 1 < lower.Length; i++)
        {
            if (lower[i] != lower[i + 1])
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Applies edits (sorted by offset, non-overlapping) to a text.</summary>
    public static string ApplyEdits(string text, IReadOnlyList<PerturbationEdit> edits)
    {
        var builder = new StringBuilder(text.Length + edits.Count);
        int position = 0;
        foreach (PerturbationEdit edit in edits)
        {
            builder.Append(text, position, edit.Offset - position).Append(edit.After);
            position = edit.Offset + edit.Before.Length;
        }

        return builder.Append(text, position, text.Length - position).ToString();
    }
}
