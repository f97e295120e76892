namespace Pip;

/// <summary>
/// Perturbs a text with single-character edits that turn words into other real words of a <see cref="Pip.Lexicon"/>
/// ("later" → "alter", "happy" → "nappy", "host" → "ghost"), falling back to plain edits when too few words have one.
/// </summary>
/// <remarks>
/// Words are chosen in a seeded random order; no position and no word (case-insensitive) is edited twice, so a short text may get fewer edits than the rate asks; the seed alone decides the twin
/// (System.Random with a seed is stable across .NET versions). Thread-safe.
/// </remarks>
internal sealed class LexiconPerturber : IPerturber
{
    private readonly CharacterEditEngine _engine;

    public LexiconPerturber(LexiconPerturberOptions options, Lexicon lexicon)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(lexicon);
        Lexicon = lexicon;
        _engine = new CharacterEditEngine(options, lexicon, options.AllowPlainEdits);
    }

    public string Name => PerturbationConstants.LexiconPerturberName;

    /// <summary>The lexicon real words are checked against.</summary>
    public Lexicon Lexicon { get; }

    public ValueTask<PerturbedSample> PerturbAsync(CalibrationSample sample, int seed, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(_engine.Perturb(sample, seed, cancellationToken));

    /// <summary>Finds the lexicon the options ask for (see <see cref="LexiconPerturberOptions"/> for the order).</summary>
    public static Lexicon ResolveLexicon(LexiconPerturberOptions options, PerturberContext context, CancellationToken cancellationToken = default)
    {
        if (options.Lexicon is { } lexicon)
        {
            return lexicon;
        }

        if (options.WordListPath is { } wordList)
        {
            return Lexicon.LoadWordList(wordList);
        }

        if ((options.CorpusPath ?? context.CorpusPath) is { } corpus)
        {
            return Lexicon.FromFile(corpus, options.MinWordFrequency, cancellationToken);
        }

        return Lexicon.FromTexts(context.Samples.Select(s => s.Text), options.MinWordFrequency);
    }
}

/// <summary>Perturbs a text with plain single-character edits (swap, replace, insert) of randomly chosen words; no lexicon.</summary>
/// <remarks>Seeded and thread-safe, like <see cref="LexiconPerturber"/>; <see cref="PerturbationEdit.IsRealWord"/> is always false.</remarks>
internal sealed class RandomCharPerturber : IPerturber
{
    private readonly CharacterEditEngine _engine;

    public RandomCharPerturber(RandomCharPerturberOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _engine = new CharacterEditEngine(options, lexicon: null, allowPlainEdits: true);
    }

    public string Name => PerturbationConstants.RandomCharPerturberName;

    public ValueTask<PerturbedSample> PerturbAsync(CalibrationSample sample, int seed, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(_engine.Perturb(sample, seed, cancellationToken));
}
