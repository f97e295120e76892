using System.ComponentModel.DataAnnotations;
using Pip.Internal;

namespace Pip;

/// <summary>How width pruning spreads the removal over the layers.</summary>
public enum WidthAllocation
{
    /// <summary>
    /// Every layer of the range loses the same fraction of its units (LLM-Pruner's block-wise setting): heads by
    /// whole key/value groups, then channels fill the rest of each layer's share of the budget.
    /// </summary>
    Uniform,

    /// <summary>
    /// FLAP's adaptive structure: scores are standardized per kind over all layers of the range, and the units with
    /// the lowest standardized scores are removed model-wide until the budget is spent.
    /// </summary>
    Adaptive,
}

/// <summary>How the scores of the parts of a unit (one per projection it spans) combine into the unit's score (LLM-Pruner's group reduction).</summary>
public enum WidthGroupReduction
{
    /// <summary>The sum of the parts.</summary>
    Sum,

    /// <summary>The mean of the parts.</summary>
    Mean,

    /// <summary>The largest part.</summary>
    Max,

    /// <summary>The product of the parts, computed and reported as the sum of their natural logarithms (no underflow); a zero part gives negative infinity.</summary>
    Product,
}

/// <summary>Names and defaults of width pruning.</summary>
public static class WidthConstants
{
    /// <summary>The uniform allocation's strategy name in reports: <c>width-uniform</c>.</summary>
    public const string UniformStrategyName = "width-uniform";

    /// <summary>The adaptive allocation's strategy name in reports: <c>width-adaptive</c>.</summary>
    public const string AdaptiveStrategyName = "width-adaptive";

    /// <summary>Random unit scores (the baseline): <c>random</c>.</summary>
    public const string RandomMetric = "random";

    /// <summary>
    /// Default share of the first layers left unpruned when no range is given: 4/32 (LLM-Pruner prunes layers 4 … 29
    /// of the 32 of LLaMA-7B), rounded to whole layers.
    /// </summary>
    public const double DefaultSkipFirstFraction = 4.0 / 32;

    /// <summary>Default share of the last layers left unpruned when no range is given: 2/32, rounded to whole layers.</summary>
    public const double DefaultSkipLastFraction = 2.0 / 32;

    /// <summary>The default range of layers pruned in a model of <paramref name="layerCount"/> layers: [round(n·4/32), n − round(n·2/32)), at least one layer.</summary>
    /// <param name="layerCount">The number of layers.</param>
    /// <returns>The first layer and the end (exclusive).</returns>
    public static (int Start, int End) DefaultLayerRange(int layerCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layerCount);
        int start = (int)Math.Round(layerCount * DefaultSkipFirstFraction, MidpointRounding.AwayFromZero);
        int end = layerCount - (int)Math.Round(layerCount * DefaultSkipLastFraction, MidpointRounding.AwayFromZero);
        return end > start ? (start, end) : (0, layerCount);
    }
}

/// <summary>Options of a width-pruning run (besides <see cref="PipelineOptions"/>, which it shares with depth pruning).</summary>
/// <remarks>Mutable until given to a <see cref="WidthPipelineBuilder"/>, which keeps a copy.</remarks>
public sealed class WidthPruningOptions : IPipOptionsCheck
{
    /// <summary>Which units to prune. Default <see cref="WidthUnits.Both"/>.</summary>
    public WidthUnits Units { get; set; } = WidthUnits.Both;

    /// <summary>How the removal is spread over the layers. Default <see cref="WidthAllocation.Uniform"/>.</summary>
    public WidthAllocation Allocation { get; set; } = WidthAllocation.Uniform;

    /// <summary>First layer (original index, inclusive) that may be pruned, or null for the default range (<see cref="WidthConstants.DefaultLayerRange"/>).</summary>
    [Range(0, int.MaxValue)]
    public int? LayerStart { get; set; }

    /// <summary>End of the layers (original index, exclusive) that may be pruned, or null for the default range.</summary>
    [Range(1, int.MaxValue)]
    public int? LayerEnd { get; set; }

    /// <summary>
    /// Whether to add FLAP's bias compensation: the mean contribution of the removed units
    /// (<c>W[:, removed] · mean(X[removed])</c>) becomes a bias of o_proj / down_proj. Needs a metric that measures
    /// input means (<c>flap</c>). Default false.
    /// </summary>
    public bool BiasCompensation { get; set; }

    void IPipOptionsCheck.AddErrors(List<string> errors, string path)
    {
        if (Units is not (WidthUnits.Heads or WidthUnits.Channels or WidthUnits.Both))
        {
            errors.Add($"{path}.{nameof(Units)}: '{Units}' is not heads, channels or both.");
        }

        if (!Enum.IsDefined(Allocation))
        {
            errors.Add($"{path}.{nameof(Allocation)}: '{Allocation}' is not uniform or adaptive.");
        }

        if (LayerStart is { } start && LayerEnd is { } end && end <= start)
        {
            errors.Add($"{path}.{nameof(LayerEnd)}: the layer range [{start}, {end}) is empty; the end must be greater than the start.");
        }
    }

    internal WidthPruningOptions Clone() => (WidthPruningOptions)MemberwiseClone();
}
