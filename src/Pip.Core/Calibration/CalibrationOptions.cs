using System.ComponentModel.DataAnnotations;
using Pip.Internal;

namespace Pip;

/// <summary>Names and defaults of calibration loading.</summary>
public static class CalibrationConstants
{
    /// <summary>Default number of samples: 8.</summary>
    public const int DefaultSampleCount = 8;

    /// <summary>Default seed of the sample choice: 42.</summary>
    public const int DefaultSeed = 42;

    /// <summary>Default fewest words a paragraph needs to be chosen: 32.</summary>
    public const int DefaultMinWords = 32;

    /// <summary>Default character budget of a sample: 2048, about 512 tokens of English text with a Llama-3 tokenizer (about 4 characters a token).</summary>
    public const int DefaultMaxCharacters = 2048;
}

/// <summary>What a calibration unit is.</summary>
public enum CalibrationUnit
{
    /// <summary>A block of non-empty lines between blank lines, its lines joined by spaces (one line per paragraph in WikiText).</summary>
    Paragraph,

    /// <summary>A non-empty line.</summary>
    Line,
}

/// <summary>How calibration samples are drawn from a text file.</summary>
public sealed class CalibrationOptions : IPipOptionsCheck
{
    /// <summary>The text file, or null when samples are given directly.</summary>
    public string? FilePath { get; set; }

    /// <summary>Number of samples. Default <see cref="CalibrationConstants.DefaultSampleCount"/>.</summary>
    [Range(1, 1_000_000)]
    public int SampleCount { get; set; } = CalibrationConstants.DefaultSampleCount;

    /// <summary>Seed of the choice of paragraphs. Default <see cref="CalibrationConstants.DefaultSeed"/>.</summary>
    public int Seed { get; set; } = CalibrationConstants.DefaultSeed;

    /// <summary>What a unit of text is. Default <see cref="CalibrationUnit.Paragraph"/>.</summary>
    public CalibrationUnit Unit { get; set; } = CalibrationUnit.Paragraph;

    /// <summary>Fewest (whitespace-separated) words a unit needs to be chosen. Default <see cref="CalibrationConstants.DefaultMinWords"/>.</summary>
    [Range(1, 1_000_000)]
    public int MinWords { get; set; } = CalibrationConstants.DefaultMinWords;

    /// <summary>Character budget of a sample: a longer unit is cut at the last word boundary within it. Default <see cref="CalibrationConstants.DefaultMaxCharacters"/>.</summary>
    [Range(16, int.MaxValue)]
    public int MaxCharacters { get; set; } = CalibrationConstants.DefaultMaxCharacters;

    /// <summary>Word budget of a sample (applied with <see cref="MaxCharacters"/>), or null for none.</summary>
    [Range(1, int.MaxValue)]
    public int? MaxWords { get; set; }

    void IPipOptionsCheck.AddErrors(List<string> errors, string path)
    {
        if (!Enum.IsDefined(Unit))
        {
            errors.Add($"{path}.{nameof(Unit)}: {(int)Unit} is not a calibration unit.");
        }

        if (MaxWords is { } maxWords && maxWords < MinWords)
        {
            errors.Add($"{path}.{nameof(MaxWords)}: {maxWords} is below {nameof(MinWords)} ({MinWords}).");
        }
    }

    /// <summary>A copy whose later changes do not affect this one.</summary>
    internal CalibrationOptions Clone() => (CalibrationOptions)MemberwiseClone();
}
