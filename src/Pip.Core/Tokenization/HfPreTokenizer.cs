using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pip.Tokenization;

/// <summary>How a split keeps the text a pattern matched (Hugging Face <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

/// <summary>A piece of text during pre-tokenization; <see cref="AtStart"/> tells whether it begins the input text.</summary>
internal readonly record struct PreToken(string Text, bool AtStart);

/// <summary>
/// The <c>pre_tokenizer</c> of a <c>tokenizer.json</c>: splits normalized text into the words that BPE works on, as
/// Hugging Face <c>tokenizers</c> does. Supports <c>ByteLevel</c> (last in a sequence), <c>Split</c>, <c>Metaspace</c>,
/// <c>Digits</c> and <c>Sequence</c>.
/// </summary>
internal sealed class HfPreTokenizer
{
    /// <summary>The regex of GPT-2 that the <c>ByteLevel</c> pre-tokenizer uses when <c>use_regex</c> is set.</summary>
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Regex Gpt2Regex = new(Gpt2Pattern, HfJson.PatternOptions);
    private static readonly Regex NumericChar = new(@"\p{N}", RegexOptions.CultureInvariant);

    private readonly Step[] _steps;

    private HfPreTokenizer(Step[] steps, bool byteLevel)
    {
        _steps = steps;
        ByteLevel = byteLevel;
    }

    /// <summary>Whether the last step is <c>ByteLevel</c>: words must then be mapped to the byte-level alphabet.</summary>
    internal bool ByteLevel { get; }

    /// <summary>A pre-tokenizer that keeps the text whole (a <c>null</c> pre_tokenizer).</summary>
    internal static HfPreTokenizer Identity { get; } = new([], byteLevel: false);

    internal static HfPreTokenizer Parse(JsonElement json, string file)
    {
        if (HfJson.IsNull(json))
        {
            return Identity;
        }

        var steps = new List<Step>();
        Add(json, file, steps);
        for (int i = 0; i < steps.Count - 1; i++)
        {
            if (steps[i] is ByteLevelStep)
            {
                throw HfJson.Error(file, "pre_tokenizer ByteLevel must be the last pre-tokenizer of a Sequence.");
            }
        }

        return new HfPreTokenizer([.. steps], steps.Count > 0 && steps[^1] is ByteLevelStep);
    }

    /// <summary>Splits <paramref name="text"/> into words.</summary>
    /// <param name="text">Normalized text (never contains added tokens).</param>
    /// <param name="atStart">Whether <paramref name="text"/> begins the input (for <c>Metaspace</c>'s <c>first</c>).</param>
    internal List<string> PreTokenize(string text, bool atStart)
    {
        var pieces = new List<PreToken> { new(text, atStart) };
        foreach (Step step in _steps)
        {
            var next = new List<PreToken>(pieces.Count * 2);
            foreach (PreToken piece in pieces)
            {
                step.Apply(piece, next);
            }

            pieces = next;
        }

        var words = new List<string>(pieces.Count);
        foreach (PreToken piece in pieces)
        {
            if (piece.Text.Length > 0)
            {
                words.Add(piece.Text);
            }
        }

        return words;
    }

    /// <summary>
    /// Splits <paramref name="piece"/> around the matches of <paramref name="pattern"/> as Hugging Face's
    /// <c>NormalizedString::split</c> does; empty pieces are dropped.
    /// </summary>
    internal static void SplitByPattern(PreToken piece, Regex pattern, SplitBehavior behavior, bool invert, List<PreToken> output)
    {
        string text = piece.Text;
        if (text.Length == 0)
        {
            return;
        }

        // (start, end, isMatch) covering the text.
        var ranges = new List<(int Start, int End, bool IsMatch)>();
        int prev = 0;
        foreach (ValueMatch m in pattern.EnumerateMatches(text))
        {
            if (m.Index != prev)
            {
                ranges.Add((prev, m.Index, invert));
            }

            ranges.Add((m.Index, m.Index + m.Length, !invert));
            prev = m.Index + m.Length;
        }

        if (prev != text.Length)
        {
            ranges.Add((prev, text.Length, invert));
        }

        var kept = new List<(int Start, int End)>(ranges.Count);
        bool previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach ((int s, int e, _) in ranges)
                {
                    kept.Add((s, e));
                }

                break;
            case SplitBehavior.Removed:
                foreach ((int s, int e, bool isMatch) in ranges)
                {
                    if (!isMatch)
                    {
                        kept.Add((s, e));
                    }
                }

                break;
            case SplitBehavior.Contiguous:
                foreach ((int s, int e, bool isMatch) in ranges)
                {
                    if (isMatch == previousMatch && kept.Count > 0)
                    {
                        kept[^1] = (kept[^1].Start, e);
                    }
                    else
                    {
                        kept.Add((s, e));
                    }

                    previousMatch = isMatch;
                }

                break;
            case SplitBehavior.MergedWithPrevious:
                foreach ((int s, int e, bool isMatch) in ranges)
                {
                    if (isMatch && !previousMatch && kept.Count > 0)
                    {
                        kept[^1] = (kept[^1].Start, e);
                    }
                    else
                    {
                        kept.Add((s, e));
                    }

                    previousMatch = isMatch;
                }

                break;
            case SplitBehavior.MergedWithNext:
                for (int i = ranges.Count - 1; i >= 0; i--)
                {
                    (int s, int e, bool isMatch) = ranges[i];
                    if (isMatch && !previousMatch && kept.Count > 0)
                    {
                        kept[^1] = (s, kept[^1].End);
                    }
                    else
                    {
                        kept.Add((s, e));
                    }

                    previousMatch = isMatch;
                }

                kept.Reverse();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(behavior));
        }

        foreach ((int s, int e) in kept)
        {
            if (e > s)
            {
                output.Add(new PreToken(text[s..e], piece.AtStart && s == 0));
            }
        }
    }

    private static void Add(JsonElement json, string file, List<Step> steps)
    {
        string type = HfJson.TypeOf(json, file, "pre_tokenizer");
        switch (type)
        {
            case "Sequence":
                foreach (JsonElement child in HfJson.RequiredArray(json, "pretokenizers", file, "pre_tokenizer Sequence").EnumerateArray())
                {
                    Add(child, file, steps);
                }

                break;
            case "ByteLevel":
                steps.Add(new ByteLevelStep(HfJson.OptBool(json, "add_prefix_space", true), HfJson.OptBool(json, "use_regex", true)));
                break;
            case "Split":
                steps.Add(new PatternStep(
                    HfJson.Pattern(json, file, "pre_tokenizer Split"),
                    ParseBehavior(HfJson.RequiredString(json, "behavior", file, "pre_tokenizer Split"), file),
                    HfJson.OptBool(json, "invert", false)));
                break;
            case "Digits":
                steps.Add(new PatternStep(
                    NumericChar,
                    HfJson.OptBool(json, "individual_digits", false) ? SplitBehavior.Isolated : SplitBehavior.Contiguous,
                    invert: false));
                break;
            case "Metaspace":
                steps.Add(ParseMetaspace(json, file));
                break;
            default:
                throw HfJson.Unsupported(file, "pre_tokenizer", type);
        }
    }

    private static MetaspaceStep ParseMetaspace(JsonElement json, string file)
    {
        string replacement = HfJson.RequiredString(json, "replacement", file, "pre_tokenizer Metaspace");
        if (replacement.Length != 1)
        {
            throw HfJson.Error(file, $"pre_tokenizer Metaspace replacement '{replacement}' must be one character.");
        }

        MetaspacePrepend scheme = ParsePrependScheme(json, file, "pre_tokenizer Metaspace");
        return new MetaspaceStep(replacement[0], scheme, HfJson.OptBool(json, "split", true));
    }

    /// <summary>Reads <c>prepend_scheme</c> (default <c>always</c>) and the older <c>add_prefix_space</c>.</summary>
    internal static MetaspacePrepend ParsePrependScheme(JsonElement json, string file, string section)
    {
        string? scheme = HfJson.OptString(json, "prepend_scheme");
        MetaspacePrepend result = scheme switch
        {
            null or "always" => MetaspacePrepend.Always,
            "first" => MetaspacePrepend.First,
            "never" => MetaspacePrepend.Never,
            _ => throw HfJson.Unsupported(file, $"{section} prepend_scheme", scheme),
        };

        return HfJson.OptBool(json, "add_prefix_space", true) ? result : MetaspacePrepend.Never;
    }

    private static SplitBehavior ParseBehavior(string behavior, string file) => behavior switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw HfJson.Unsupported(file, "pre_tokenizer Split behavior", behavior),
    };

    private abstract class Step
    {
        public abstract void Apply(PreToken piece, List<PreToken> output);
    }

    private sealed class PatternStep(Regex pattern, SplitBehavior behavior, bool invert) : Step
    {
        public override void Apply(PreToken piece, List<PreToken> output) => SplitByPattern(piece, pattern, behavior, invert, output);
    }

    private sealed class ByteLevelStep(bool addPrefixSpace, bool useRegex) : Step
    {
        public override void Apply(PreToken piece, List<PreToken> output)
        {
            PreToken p = addPrefixSpace && !piece.Text.StartsWith(' ') ? piece with { Text = " " + piece.Text } : piece;
            if (useRegex)
            {
                SplitByPattern(p, Gpt2Regex, SplitBehavior.Isolated, invert: false, output);
            }
            else
            {
                output.Add(p);
            }
        }
    }

    private sealed class MetaspaceStep(char replacement, MetaspacePrepend scheme, bool split) : Step
    {
        private readonly Regex _delimiter = new(Regex.Escape(replacement.ToString()), RegexOptions.CultureInvariant);

        public override void Apply(PreToken piece, List<PreToken> output)
        {
            string text = piece.Text.Replace(' ', replacement);
            bool prepend = scheme switch
            {
                MetaspacePrepend.Always => true,
                MetaspacePrepend.First => piece.AtStart,
                _ => false,
            };
            if (prepend && !text.StartsWith(replacement))
            {
                text = replacement + text;
            }

            PreToken p = piece with { Text = text };
            if (split)
            {
                SplitByPattern(p, _delimiter, SplitBehavior.MergedWithNext, invert: false, output);
            }
            else
            {
                output.Add(p);
            }
        }
    }
}

/// <summary>When <c>Metaspace</c> puts its replacement character in front of a piece.</summary>
internal enum MetaspacePrepend
{
    Always,
    First,
    Never,
}
