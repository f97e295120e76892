using System.ComponentModel.DataAnnotations;

namespace Pip;

/// <summary>Names and defaults of the built-in strategies.</summary>
public static class StrategyConstants
{
    /// <summary>Name of the iterative greedy strategy.</summary>
    public const string IterativeGreedyName = "iterative";

    /// <summary>Name of the one-shot strategy.</summary>
    public const string OneShotName = "one-shot";

    /// <summary>Default layers removed per round by the iterative strategy: 1.</summary>
    public const int DefaultLayersPerRound = 1;
}

/// <summary>Options of the iterative greedy strategy.</summary>
public sealed class IterativeGreedyStrategyOptions
{
    /// <summary>Lowest-scoring candidates removed per round (fewer in the last round if the target says so). Default <see cref="StrategyConstants.DefaultLayersPerRound"/>.</summary>
    [Range(1, 100_000)]
    public int LayersPerRound { get; set; } = StrategyConstants.DefaultLayersPerRound;

    internal IterativeGreedyStrategyOptions Clone() => (IterativeGreedyStrategyOptions)MemberwiseClone();
}
