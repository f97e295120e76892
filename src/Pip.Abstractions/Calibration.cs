namespace Pip;

/// <summary>One calibration text.</summary>
/// <param name="Index">Position of the sample in its calibration set (0-based).</param>
/// <param name="Text">The text; the causal-LM loss uses it as both input and label.</param>
public sealed record CalibrationSample(int Index, string Text);

/// <summary>The kind of a character-level edit.</summary>
public enum PerturbationKind
{
    /// <summary>Two adjacent characters exchanged ("later" → "alter").</summary>
    Swap,
    /// <summary>One character replaced ("happy" → "nappy").</summary>
    Replace,
    /// <summary>One character inserted ("host" → "ghost").</summary>
    Insert,
    /// <summary>One character deleted ("bread" → "bred").</summary>
    Delete,
}

/// <summary>One recorded edit of a perturbation: a word of the original text and what it became.</summary>
/// <param name="Offset">Character offset of the word in the original text.</param>
/// <param name="Before">The original word.</param>
/// <param name="After">The edited word.</param>
/// <param name="Kind">The kind of edit.</param>
/// <param name="IsRealWord">Whether <paramref name="After"/> is a word of the lexicon (a meaning change rather than a typo).</param>
public sealed record PerturbationEdit(int Offset, string Before, string After, PerturbationKind Kind, bool IsRealWord);

/// <summary>A perturbed twin of a calibration sample.</summary>
/// <param name="Original">The sample that was perturbed.</param>
/// <param name="Text">The perturbed text.</param>
/// <param name="Edits">The edits, in order of offset; applying them to the original text gives <paramref name="Text"/>.</param>
public sealed record PerturbedSample(CalibrationSample Original, string Text, IReadOnlyList<PerturbationEdit> Edits);
