namespace Pip;

/// <summary>Scores each layer with a seeded uniform random number in [0, 1): the random-pruning baseline.</summary>
/// <remarks>The round's seed decides the scores, so a run is reproducible. Stateless and thread-safe.</remarks>
internal sealed class RandomMetric : IImportanceMetric
{
    public string Name => MetricConstants.Random;

    public bool UsesPerturbations => false;

    public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        var random = new Random(request.Seed);
        var scores = new double[request.Model.LayerCount];
        for (int i = 0; i < scores.Length; i++)
        {
            scores[i] = random.NextDouble();
        }

        request.Progress?.Report(new ScoringProgress(Name, 1, 1));
        return ValueTask.FromResult(new LayerScores(scores));
    }
}
