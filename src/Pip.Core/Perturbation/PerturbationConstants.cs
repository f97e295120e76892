namespace Pip;

/// <summary>Names and defaults of the built-in perturbers.</summary>
public static class PerturbationConstants
{
    /// <summary>Name of the lexicon perturber (real-word edits).</summary>
    public const string LexiconPerturberName = "lexicon";

    /// <summary>Name of the random-character perturber (plain edits).</summary>
    public const string RandomCharPerturberName = "random-char";

    /// <summary>Default edits per sample as a fraction of its words: 0.1 (one word in ten; a sample always gets at least one edit).</summary>
    public const double DefaultRate = 0.1;

    /// <summary>Default shortest word that may be edited: 4 letters (shorter words are mostly function words — "the" → "they", "and" → "any" — whose edits break the syntax rather than change the meaning).</summary>
    public const int DefaultMinWordLength = 4;

    /// <summary>Longest word that may be edited: 64 letters.</summary>
    public const int MaxWordLength = 64;

    /// <summary>Default minimum number of occurrences for a corpus word to enter a lexicon: 1.</summary>
    public const int DefaultMinWordFrequency = 1;

    /// <summary>The edit kinds allowed by default: all of them.</summary>
    public static IReadOnlyList<PerturbationKind> DefaultKinds { get; } = [PerturbationKind.Swap, PerturbationKind.Replace, PerturbationKind.Insert];
}
