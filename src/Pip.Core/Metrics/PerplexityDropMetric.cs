namespace Pip;

/// <summary>
/// Scores each layer by how much the calibration loss rises when the layer is skipped: loss without layer l minus the
/// base loss (nats; the same order as the perplexity ratio). Used one-shot it is Shortened LLaMA's PPL criterion; with
/// the iterative greedy strategy it is SLEB.
/// </summary>
/// <remarks>
/// Works with any <see cref="IPrunableModel"/> through <see cref="IPrunableModel.ComputeLossAsync"/>: L + 1 loss
/// evaluations per round; a model that is an <see cref="ILayerSkipLossModel"/> computes them all in one pass. Stateless and thread-safe; the model is not changed.
/// </remarks>
internal sealed class PerplexityDropMetric : IImportanceMetric
{
    private readonly int? _maxTokens;

    public PerplexityDropMetric(PerplexityDropMetricOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _maxTokens = options.MaxTokensPerSample;
    }

    public string Name => MetricConstants.PerplexityDrop;

    public bool UsesPerturbations => false;

    public async ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        IPrunableModel model = request.Model;
        List<IReadOnlyList<int>> sequences = [.. request.Samples.Select(s => Truncate(model.Tokenize(s.Text)))];
        int layers = model.LayerCount;
        int total = layers + 1;
        cancellationToken.ThrowIfCancellationRequested();
        if (model is ILayerSkipLossModel onePass)
        {
            // Every "skip layer k" carried through one pass (streamed models read each layer once).
            var all = await onePass.ComputeLayerSkipLossesAsync(sequences, cancellationToken).ConfigureAwait(false);
            request.Progress?.Report(new ScoringProgress(Name, total, total));
            return new LayerScores(all.Skip(1).Select(loss => loss - all[0]).ToArray());
        }

        double baseLoss = await model.ComputeLossAsync(sequences, null, cancellationToken).ConfigureAwait(false);
        request.Progress?.Report(new ScoringProgress(Name, 1, total));
        var scores = new double[layers];
        for (int layer = 0; layer < layers; layer++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            double loss = await model.ComputeLossAsync(sequences, new HashSet<int> { layer }, cancellationToken).ConfigureAwait(false);
            scores[layer] = loss - baseLoss;
            request.Progress?.Report(new ScoringProgress(Name, layer + 2, total));
        }

        return new LayerScores(scores);
    }

    private IReadOnlyList<int> Truncate(IReadOnlyList<int> ids) =>
        _maxTokens is { } max && ids.Count > max ? [.. ids.Take(max)] : ids;
}

/// <summary>Builder extensions that set one of Pip.Core's metrics.</summary>
public static class MetricPipelineBuilderExtensions
{
    /// <summary>Uses seeded random scores (the random-pruning baseline).</summary>
    /// <param name="builder">The builder.</param>
    public static PipelineBuilder UseRandomMetric(this PipelineBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseMetric(new RandomMetric());
    }

    /// <summary>Uses the loss increase when a layer is skipped (one-shot: Shortened LLaMA PPL; iterative: SLEB).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">Its options, or null for the defaults; validated by <see cref="PipelineBuilder.Build"/>.</param>
    public static PipelineBuilder UsePerplexityDropMetric(this PipelineBuilder builder, PerplexityDropMetricOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options ??= new PerplexityDropMetricOptions();
        return builder.UseMetric(MetricConstants.PerplexityDrop, options, () => new PerplexityDropMetric(options.Clone()));
    }
}
