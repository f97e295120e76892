using System.ComponentModel.DataAnnotations;

namespace Pip;

/// <summary>Names and defaults of the consistency discriminator.</summary>
public static class ConsistencyDiscriminatorConstants
{
    /// <summary>The filter's name.</summary>
    public const string Name = "consistency";

    /// <summary>
    /// Default threshold of the coefficient of variation: 0.5. A layer whose scores across perturbation sets have a
    /// standard deviation above half their mean is not trusted in that round. With a handful of sets (3 by default) the
    /// sample CV of a steady score is typically well below 0.3, so 0.5 only catches layers whose score depends on which
    /// words happened to be edited. Lower it to be stricter.
    /// </summary>
    public const double DefaultThreshold = 0.5;

    /// <summary>Default number of candidates always kept (the most consistent ones) when too few pass: 1.</summary>
    public const int DefaultMinimumCandidates = 1;
}

/// <summary>Options of the consistency discriminator.</summary>
public sealed class ConsistencyDiscriminatorOptions
{
    /// <summary>
    /// Largest coefficient of variation (population standard deviation divided by the absolute mean) of a layer's
    /// scores across perturbation sets for it to stay a candidate. Default <see cref="ConsistencyDiscriminatorConstants.DefaultThreshold"/>.
    /// </summary>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double Threshold { get; set; } = ConsistencyDiscriminatorConstants.DefaultThreshold;

    /// <summary>
    /// When fewer candidates pass, the most consistent excluded ones are kept up to this number so that pruning can
    /// progress (the exclusion reasons say so). Default <see cref="ConsistencyDiscriminatorConstants.DefaultMinimumCandidates"/>.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int MinimumCandidates { get; set; } = ConsistencyDiscriminatorConstants.DefaultMinimumCandidates;

    internal ConsistencyDiscriminatorOptions Clone() => (ConsistencyDiscriminatorOptions)MemberwiseClone();
}
