namespace Pip;

/// <summary>The edit engine of the character-edit perturbers: picks words and edits, real-word edits first when a lexicon is given.</summary>
/// <remarks>Immutable after construction; safe to call concurrently.</remarks>
internal sealed class CharacterEditEngine
{
    private readonly double _rate;
    private readonly int _minWordLength;
    private readonly PerturbationKind[] _kinds;
    private readonly Lexicon? _lexicon;
    private readonly bool _allowPlainEdits;

    public CharacterEditEngine(CharacterEditOptions options, Lexicon? lexicon, bool allowPlainEdits)
    {
        _rate = options.Rate;
        _minWordLength = options.MinWordLength;
        _kinds = [.. options.Kinds.Distinct().Order()];
        _lexicon = lexicon;
        _allowPlainEdits = allowPlainEdits;
    }

    /// <summary>Number of edits for a text of <paramref name="wordCount"/> words: rate × words, rounded, at least 1.</summary>
    public int EditCount(int wordCount) => Math.Max(1, (int)Math.Round(_rate * wordCount, MidpointRounding.AwayFromZero));

    public PerturbedSample Perturb(CalibrationSample sample, int seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sample);
        cancellationToken.ThrowIfCancellationRequested();
        string text = sample.Text ?? string.Empty;
        List<WordSpan> words = WordEditor.FindWords(text);
        var eligible = new List<int>();
        for (int i = 0; i < words.Count; i++)
        {
            WordSpan w = words[i];
            if (w.Length >= _minWordLength && w.Length <= PerturbationConstants.MaxWordLength
                && WordEditor.IsAsciiLetters(text.AsSpan(w.Offset, w.Length)))
            {
                eligible.Add(i);
            }
        }

        if (eligible.Count == 0)
        {
            return new PerturbedSample(sample, text, []);
        }

        int target = Math.Min(EditCount(words.Count), eligible.Count);
        var random = new Random(seed);
        int[] order = [.. eligible];
        Shuffle(order, random);

        // Each word is edited at most once: a position is never edited twice, and neither is a word type (case-insensitive),
        // so that a frequent word ("the") cannot take most of the edits.
        var edits = new List<PerturbationEdit>(target);
        var used = new bool[words.Count];
        var editedTypes = new HashSet<string>(StringComparer.Ordinal);
        HashSet<string>.AlternateLookup<ReadOnlySpan<char>> editedLookup = editedTypes.GetAlternateLookup<ReadOnlySpan<char>>();
        Span<char> lower = stackalloc char[PerturbationConstants.MaxWordLength];

        if (_lexicon is not null)
        {
            var candidates = new List<EditOp>();
            foreach (int index in order)
            {
                if (edits.Count == target)
                {
                    break;
                }

                WordSpan w = words[index];
                Span<char> word = lower[..w.Length];
                Lexicon.TryLowerAscii(text.AsSpan(w.Offset, w.Length), word);
                if (editedLookup.Contains(word))
                {
                    continue;
                }

                candidates.Clear();
                WordEditor.CollectRealWordEdits(word, _kinds, _lexicon, candidates);
                if (candidates.Count == 0)
                {
                    continue;
                }

                // Pick the kind first, uniformly among the kinds that have a real-word edit, then the edit:
                // replacements outnumber the other kinds and would otherwise dominate.
                PerturbationKind[] kinds = [.. candidates.Select(c => c.Kind).Distinct()];
                PerturbationKind kind = kinds[random.Next(kinds.Length)];
                EditOp[] ofKind = [.. candidates.Where(c => c.Kind == kind)];
                edits.Add(MakeEdit(text, w, ofKind[random.Next(ofKind.Length)], isRealWord: true));
                used[index] = true;
                editedLookup.Add(word);
            }
        }

        if (edits.Count < target && (_allowPlainEdits || _lexicon is null))
        {
            foreach (int index in order)
            {
                if (edits.Count == target)
                {
                    break;
                }

                if (used[index])
                {
                    continue;
                }

                WordSpan w = words[index];
                Span<char> word = lower[..w.Length];
                Lexicon.TryLowerAscii(text.AsSpan(w.Offset, w.Length), word);
                if (!editedLookup.Contains(word) && WordEditor.RandomEdit(word, _kinds, random) is { } op)
                {
                    PerturbationEdit edit = MakeEdit(text, w, op, isRealWord: false);
                    edits.Add(_lexicon is not null && _lexicon.Contains(edit.After) ? edit with { IsRealWord = true } : edit);
                    used[index] = true;
                    editedLookup.Add(word);
                }
            }
        }

        edits.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        return new PerturbedSample(sample, WordEditor.ApplyEdits(text, edits), edits);
    }

    /// <summary>Fisher–Yates shuffle written out here so that the order depends on <see cref="Random.Next(int)"/> only (stable for seeded Random).</summary>
    private static void Shuffle(int[] items, Random random)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static PerturbationEdit MakeEdit(string text, WordSpan w, EditOp op, bool isRealWord)
    {
        string before = text.Substring(w.Offset, w.Length);
        return new PerturbationEdit(w.Offset, before, WordEditor.Apply(before, op), op.Kind, isRealWord);
    }
}
