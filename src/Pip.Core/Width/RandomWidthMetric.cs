namespace Pip;

/// <summary>Scores every unit with a seeded uniform random number in [0, 1): the random width-pruning baseline. Name <c>random</c>.</summary>
/// <remarks>The request's seed decides the scores (heads of all layers first, then channels), so a run is reproducible. Stateless and thread-safe; works with any <see cref="IWidthPrunableModel"/>.</remarks>
public sealed class RandomWidthMetric : IWidthImportanceMetric
{
    /// <inheritdoc />
    public string Name => WidthConstants.RandomMetric;

    /// <inheritdoc />
    public ValueTask<WidthScores> ScoreAsync(WidthImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        var random = new Random(request.Seed);
        var layers = request.Layers.ToHashSet();
        IReadOnlyList<IReadOnlyList<double>>? Draw(WidthUnits units, WidthUnitKind kind) =>
            !request.Units.HasFlag(units) ? null :
            [.. Enumerable.Range(0, request.Model.LayerCount).Select(l => layers.Contains(l)
                ? (IReadOnlyList<double>)[.. Enumerable.Range(0, request.Model.GetUnitCount(l, kind)).Select(_ => random.NextDouble())]
                : [])];
        var heads = Draw(WidthUnits.Heads, WidthUnitKind.Heads);
        var channels = Draw(WidthUnits.Channels, WidthUnitKind.Channels);
        request.Progress?.Report(new ScoringProgress(Name, 1, 1));
        return ValueTask.FromResult(new WidthScores(heads, channels));
    }
}
