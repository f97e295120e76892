namespace Pip;

/// <summary>Checks that a model's answer is the original text with exactly one word changed by exactly one character edit of the asked kind.</summary>
internal static class ChatAnswerValidator
{
    private static readonly (char Open, char Close)[] Quotes = [('"', '"'), ('\'', '\''), ('\u201C', '\u201D'), ('\u2018', '\u2019'), ('\u00AB', '\u00BB'), ('`', '`')];

    /// <summary>Validates <paramref name="answer"/>; on success <paramref name="edit"/> is the edit (offset in <paramref name="original"/>), else <paramref name="rejection"/> says why.</summary>
    public static bool TryGetEdit(string original, string? answer, PerturbationKind kind, ChatClientPerturberOptions options, out PerturbationEdit? edit, out string rejection)
    {
        edit = null;
        int lead = original.Length - original.TrimStart().Length;
        string core = original.Trim();
        string text = Unwrap((answer ?? string.Empty).Trim(), core, options.StripQuotes);
        if (text.Length == 0)
        {
            rejection = "the answer is empty";
            return false;
        }

        if (string.Equals(text, core, StringComparison.Ordinal))
        {
            rejection = "the answer is the unchanged text";
            return false;
        }

        List<(bool IsWord, string Text, int Offset)> before = Segments(core);
        List<(bool IsWord, string Text, int Offset)> after = Segments(text);
        if (before.Count != after.Count || (before.Count > 0 && before[0].IsWord != after[0].IsWord))
        {
            rejection = "the answer has other words than the text (words added, removed, split or joined, or text around it)";
            return false;
        }

        int changed = -1;
        for (int i = 0; i < before.Count; i++)
        {
            if (string.Equals(before[i].Text, after[i].Text, StringComparison.Ordinal))
            {
                continue;
            }

            if (!before[i].IsWord)
            {
                rejection = $"the answer changes the text between words ('{Visible(before[i].Text)}' → '{Visible(after[i].Text)}'); only one word may change";
                return false;
            }

            if (changed >= 0)
            {
                rejection = $"the answer changes more than one word ('{before[changed].Text}' → '{after[changed].Text}', '{before[i].Text}' → '{after[i].Text}')";
                return false;
            }

            changed = i;
        }

        string word = before[changed].Text;
        string replacement = after[changed].Text;
        PerturbationKind? actual = Classify(word.ToLowerInvariant(), replacement.ToLowerInvariant());
        if (actual is null)
        {
            rejection = string.Equals(word, replacement, StringComparison.OrdinalIgnoreCase)
                ? $"the answer only changes the case of '{word}'"
                : $"'{word}' → '{replacement}' is not a single-character edit";
            return false;
        }

        if (actual != kind)
        {
            rejection = $"'{word}' → '{replacement}' is a {actual.Value.ToString().ToLowerInvariant()}, not the {kind.ToString().ToLowerInvariant()} asked for";
            return false;
        }

        if (word.Length < options.MinWordLength)
        {
            rejection = $"the edited word '{word}' is shorter than {options.MinWordLength} letters";
            return false;
        }

        bool isRealWord = options.Lexicon?.Contains(replacement) ?? true;
        if (options.RequireRealWord && !isRealWord)
        {
            rejection = $"'{replacement}' is not a word of the lexicon";
            return false;
        }

        edit = new PerturbationEdit(lead + before[changed].Offset, word, replacement, kind, isRealWord);
        rejection = string.Empty;
        return true;
    }

    /// <summary>The kind of the single edit that turns <paramref name="a"/> into <paramref name="b"/>, or null when it takes none or more than one.</summary>
    internal static PerturbationKind? Classify(string a, string b)
    {
        int prefix = 0;
        while (prefix < a.Length && prefix < b.Length && a[prefix] == b[prefix])
        {
            prefix++;
        }

        if (a.Length == b.Length)
        {
            if (prefix == a.Length)
            {
                return null;
            }

            if (a.AsSpan(prefix + 1).SequenceEqual(b.AsSpan(prefix + 1)))
            {
                return PerturbationKind.Replace;
            }

            bool swapped = prefix + 1 < a.Length && a[prefix] == b[prefix + 1] && a[prefix + 1] == b[prefix]
                && a.AsSpan(prefix + 2).SequenceEqual(b.AsSpan(prefix + 2));
            return swapped ? PerturbationKind.Swap : null;
        }

        if (b.Length == a.Length + 1)
        {
            return a.AsSpan(prefix).SequenceEqual(b.AsSpan(prefix + 1)) ? PerturbationKind.Insert : null;
        }

        if (b.Length == a.Length - 1)
        {
            return a.AsSpan(prefix + 1).SequenceEqual(b.AsSpan(prefix)) ? PerturbationKind.Delete : null;
        }

        return null;
    }

    /// <summary>Removes one Markdown code fence or one pair of quotes around the whole answer, when the text itself is not so wrapped.</summary>
    private static string Unwrap(string answer, string core, bool strip)
    {
        if (!strip)
        {
            return answer;
        }

        if (answer.StartsWith("```", StringComparison.Ordinal) && answer.Length >= 6 && answer.EndsWith("```", StringComparison.Ordinal) && !core.StartsWith("```", StringComparison.Ordinal))
        {
            string inner = answer[3..^3];
            int newline = inner.IndexOf('\n', StringComparison.Ordinal);
            // A language tag ("```text") sits on the fence's line.
            if (newline >= 0 && inner[..newline].All(char.IsLetterOrDigit))
            {
                inner = inner[(newline + 1)..];
            }

            return inner.Trim('\n', '\r');
        }

        foreach ((char open, char close) in Quotes)
        {
            if (answer.Length >= 2 && answer[0] == open && answer[^1] == close && !(core.Length > 0 && core[0] == open && core[^1] == close))
            {
                return answer[1..^1];
            }
        }

        return answer;
    }

    /// <summary>The text cut into alternating words (maximal runs of letters) and the runs between them.</summary>
    private static List<(bool IsWord, string Text, int Offset)> Segments(string text)
    {
        var segments = new List<(bool, string, int)>();
        int i = 0;
        while (i < text.Length)
        {
            bool isWord = char.IsLetter(text[i]);
            int start = i;
            while (i < text.Length && char.IsLetter(text[i]) == isWord)
            {
                i++;
            }

            segments.Add((isWord, text[start..i], start));
        }

        return segments;
    }

    private static string Visible(string text) => text.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal);
}
