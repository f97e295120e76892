using System.Text.RegularExpressions;

namespace Pip.Tokenization;

/// <summary>An entry of <c>added_tokens</c> in a <c>tokenizer.json</c>.</summary>
internal sealed record HfAddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord);

/// <summary>A piece of input: either plain text (<see cref="TokenId"/> null) or one added token.</summary>
internal readonly record struct TextSegment(int Start, int Length, int? TokenId);

/// <summary>
/// Finds added tokens in text as Hugging Face's <c>AddedVocabulary</c> does: leftmost-longest matches, with
/// <c>lstrip</c>/<c>rstrip</c> taking the whitespace beside a match and <c>single_word</c> refusing matches inside words.
/// </summary>
internal sealed class AddedTokenSplitter
{
    private static readonly Regex EndsWithWord = new(@"\w$", RegexOptions.CultureInvariant);
    private static readonly Regex StartsWithWord = new(@"^\w", RegexOptions.CultureInvariant);

    private readonly Dictionary<char, List<(string Pattern, HfAddedToken Token)>> _byFirstChar = [];

    internal AddedTokenSplitter(IEnumerable<(string Pattern, HfAddedToken Token)> tokens)
    {
        foreach ((string pattern, HfAddedToken token) in tokens)
        {
            if (pattern.Length == 0)
            {
                continue;
            }

            if (!_byFirstChar.TryGetValue(pattern[0], out List<(string, HfAddedToken)>? list))
            {
                _byFirstChar[pattern[0]] = list = [];
            }

            list.Add((pattern, token));
        }

        foreach (List<(string Pattern, HfAddedToken Token)> list in _byFirstChar.Values)
        {
            // Longest first, so the first hit at a position is the longest.
            list.Sort((a, b) => b.Pattern.Length.CompareTo(a.Pattern.Length));
        }
    }

    internal bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>Splits <paramref name="text"/> into plain segments and added tokens, covering it from start to end.</summary>
    internal List<TextSegment> Split(string text)
    {
        var segments = new List<TextSegment>();
        if (IsEmpty)
        {
            if (text.Length > 0)
            {
                segments.Add(new TextSegment(0, text.Length, null));
            }

            return segments;
        }

        int startOffset = 0;
        int pos = 0;
        while (pos < text.Length)
        {
            HfAddedToken? hit = null;
            int hitLength = 0;
            if (_byFirstChar.TryGetValue(text[pos], out List<(string Pattern, HfAddedToken Token)>? candidates))
            {
                foreach ((string pattern, HfAddedToken token) in candidates)
                {
                    if (string.CompareOrdinal(text, pos, pattern, 0, pattern.Length) == 0)
                    {
                        hit = token;
                        hitLength = pattern.Length;
                        break;
                    }
                }
            }

            if (hit is null)
            {
                pos++;
                continue;
            }

            int start = pos;
            int stop = pos + hitLength;
            if (hit.SingleWord)
            {
                bool spaceBefore = start == 0 || !EndsWithWord.IsMatch(text.AsSpan(0, start));
                bool spaceAfter = stop == text.Length || !StartsWithWord.IsMatch(text.AsSpan(stop));
                if (!spaceBefore || !spaceAfter)
                {
                    pos++;
                    continue;
                }
            }

            if (hit.LStrip)
            {
                int s = start;
                while (s > startOffset && char.IsWhiteSpace(text[s - 1]))
                {
                    s--;
                }

                start = s;
            }

            if (hit.RStrip)
            {
                while (stop < text.Length && char.IsWhiteSpace(text[stop]))
                {
                    stop++;
                }
            }

            if (startOffset < start)
            {
                segments.Add(new TextSegment(startOffset, start - startOffset, null));
            }

            segments.Add(new TextSegment(start, stop - start, hit.Id));
            startOffset = stop;
            pos = stop;
        }

        if (startOffset < text.Length)
        {
            segments.Add(new TextSegment(startOffset, text.Length - startOffset, null));
        }

        return segments;
    }
}
