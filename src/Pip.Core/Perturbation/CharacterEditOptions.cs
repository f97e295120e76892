using System.ComponentModel.DataAnnotations;
using Pip.Internal;

namespace Pip;

/// <summary>Options shared by the character-edit perturbers.</summary>
/// <remarks>Words are maximal runs of letters; only words made of ASCII letters a–z, A–Z are edited.</remarks>
public abstract class CharacterEditOptions : IPipOptionsCheck
{
    /// <summary>Edits per sample as a fraction of the sample's words, rounded, and at least 1. Default <see cref="PerturbationConstants.DefaultRate"/>.</summary>
    [Range(0.0, 1.0, MinimumIsExclusive = true)]
    public double Rate { get; set; } = PerturbationConstants.DefaultRate;

    /// <summary>Shortest word (in letters) that may be edited. Default <see cref="PerturbationConstants.DefaultMinWordLength"/>.</summary>
    [Range(2, PerturbationConstants.MaxWordLength)]
    public int MinWordLength { get; set; } = PerturbationConstants.DefaultMinWordLength;

    /// <summary>The edit kinds allowed. Default: swap, replace and insert.</summary>
    [Required]
    [MinLength(1)]
    public PerturbationKind[] Kinds { get; set; } = [.. PerturbationConstants.DefaultKinds];

    void IPipOptionsCheck.AddErrors(List<string> errors, string path)
    {
        if (Kinds is null)
        {
            return;
        }

        foreach (PerturbationKind kind in Kinds)
        {
            if (!Enum.IsDefined(kind))
            {
                errors.Add($"{path}.{nameof(Kinds)}: {(int)kind} is not a perturbation kind (valid: {string.Join(", ", Enum.GetNames<PerturbationKind>())}).");
            }
        }

        AddMoreErrors(errors, path);
    }

    /// <summary>A copy whose later changes do not affect this one.</summary>
    internal CharacterEditOptions Clone()
    {
        var copy = (CharacterEditOptions)MemberwiseClone();
        copy.Kinds = Kinds is null ? null! : [.. Kinds];
        return copy;
    }

    /// <summary>Adds the checks of a derived class.</summary>
    private protected virtual void AddMoreErrors(List<string> errors, string path)
    {
    }
}

/// <summary>Options of the lexicon perturber, which prefers edits that turn a word into another real word ("later" → "alter").</summary>
/// <remarks>
/// The lexicon is, in order of precedence: <see cref="Lexicon"/>; the word list <see cref="WordListPath"/>; the words of
/// the corpus file <see cref="CorpusPath"/>; the words of the calibration file the pipeline loaded its samples from; the
/// words of the calibration samples themselves. Corpus words need <see cref="MinWordFrequency"/> occurrences.
/// </remarks>
public sealed class LexiconPerturberOptions : CharacterEditOptions
{
    /// <summary>An explicit lexicon, or null.</summary>
    public Lexicon? Lexicon { get; set; }

    /// <summary>A word list file (one word per line), or null.</summary>
    public string? WordListPath { get; set; }

    /// <summary>A text file whose words make the lexicon, or null.</summary>
    public string? CorpusPath { get; set; }

    /// <summary>How often a corpus word must occur to be a lexicon word. Default <see cref="PerturbationConstants.DefaultMinWordFrequency"/>; raise it for large, noisy corpora.</summary>
    [Range(1, int.MaxValue)]
    public int MinWordFrequency { get; set; } = PerturbationConstants.DefaultMinWordFrequency;

    /// <summary>Whether to make plain (non-word) edits when too few words have a real-word edit. Default true.</summary>
    public bool AllowPlainEdits { get; set; } = true;

    private protected override void AddMoreErrors(List<string> errors, string path)
    {
        int sources = (Lexicon is null ? 0 : 1) + (WordListPath is null ? 0 : 1) + (CorpusPath is null ? 0 : 1);
        if (sources > 1)
        {
            errors.Add($"{path}: set at most one of {nameof(Lexicon)}, {nameof(WordListPath)} and {nameof(CorpusPath)}.");
        }

        if (WordListPath is not null && !File.Exists(WordListPath))
        {
            errors.Add($"{path}.{nameof(WordListPath)}: word list file '{WordListPath}' does not exist.");
        }

        if (CorpusPath is not null && !File.Exists(CorpusPath))
        {
            errors.Add($"{path}.{nameof(CorpusPath)}: corpus file '{CorpusPath}' does not exist.");
        }
    }
}

/// <summary>Options of the random-character perturber (plain edits, no lexicon).</summary>
public sealed class RandomCharPerturberOptions : CharacterEditOptions
{
}
