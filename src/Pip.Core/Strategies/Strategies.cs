namespace Pip;

/// <summary>Scores once and removes the lowest-scoring candidates until the target is met, then stops.</summary>
/// <remarks>With the perplexity-drop metric this is Shortened LLaMA's PPL criterion. Stateless and thread-safe.</remarks>
internal sealed class OneShotStrategy : IPruningStrategy
{
    public string Name => StrategyConstants.OneShotName;

    public PruningDecision Decide(PruningState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return new PruningDecision(TargetPlanner.SelectLayers(state, int.MaxValue), Continue: false);
    }
}

/// <summary>Removes the <see cref="IterativeGreedyStrategyOptions.LayersPerRound"/> lowest-scoring candidates per round and rescores, until the target is met.</summary>
/// <remarks>PIP's loop; with the perplexity-drop metric this is SLEB. Stateless and thread-safe.</remarks>
internal sealed class IterativeGreedyStrategy : IPruningStrategy
{
    private readonly int _layersPerRound;

    public IterativeGreedyStrategy(IterativeGreedyStrategyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _layersPerRound = options.LayersPerRound;
    }

    public string Name => StrategyConstants.IterativeGreedyName;

    public PruningDecision Decide(PruningState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        IReadOnlyList<int> layers = TargetPlanner.SelectLayers(state, _layersPerRound);
        bool more = layers.Count > 0 && !TargetPlanner.IsReachedAfter(state, [.. layers]) && state.Model.LayerCount - layers.Count > 1;
        return new PruningDecision(layers, more);
    }
}

/// <summary>Builder extensions that set the pipeline's strategy.</summary>
public static class StrategyPipelineBuilderExtensions
{
    /// <summary>Uses the one-shot strategy: one scoring round, then remove the lowest candidates until the target is met.</summary>
    /// <param name="builder">The builder.</param>
    public static PipelineBuilder UseOneShot(this PipelineBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseStrategy(new OneShotStrategy());
    }

    /// <summary>Uses the iterative greedy strategy: remove the lowest candidates, rescore the pruned model, repeat until the target is met.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">Its options, or null for the defaults; validated by <see cref="PipelineBuilder.Build"/>.</param>
    public static PipelineBuilder UseIterativeGreedy(this PipelineBuilder builder, IterativeGreedyStrategyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options ??= new IterativeGreedyStrategyOptions();
        return builder.UseStrategy(StrategyConstants.IterativeGreedyName, options, () => new IterativeGreedyStrategy(options.Clone()));
    }
}
