namespace Pip.Tests.Fakes;

/// <summary>
/// A model whose layers have known importance: the loss is 1 plus the importance of every layer that is removed or
/// skipped. Token ids are a BOS id (1) followed by the characters' code points.
/// </summary>
internal sealed class FakeModel : IPrunableModel
{
    private readonly List<int> _layers;
    private readonly long[] _layerSizes;
    private readonly double[] _importance;
    private readonly HashSet<int> _removed = [];

    public FakeModel(int layers, long layerParameters = 100, long otherParameters = 1000, double[]? importance = null)
        : this(Enumerable.Repeat(layerParameters, layers).ToArray(), otherParameters, importance)
    {
    }

    public FakeModel(long[] layerSizes, long otherParameters, double[]? importance = null)
    {
        _layerSizes = layerSizes;
        _layers = [.. Enumerable.Range(0, layerSizes.Length)];
        _importance = importance ?? [.. Enumerable.Range(0, layerSizes.Length).Select(i => (double)i)];
        OtherParameters = otherParameters;
    }

    public long OtherParameters { get; }

    public int RemoveCalls { get; private set; }

    public int LossCalls { get; private set; }

    public string Architecture => "FakeForCausalLM";

    public int LayerCount => _layers.Count;

    public long ParameterCount => OtherParameters + _layers.Sum(l => _layerSizes[l]);

    public IReadOnlyList<int> OriginalLayerIndices => [.. _layers];

    public long GetLayerParameterCount(int layer) => _layerSizes[_layers[layer]];

    public IReadOnlyList<int> Tokenize(string text) => [1, .. text.Select(c => (int)c)];

    public ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        LossCalls++;
        double loss = 1 + _removed.Sum(l => _importance[l]);
        foreach (int layer in skipLayers ?? new HashSet<int>())
        {
            loss += _importance[_layers[layer]];
        }

        return ValueTask.FromResult(loss);
    }

    public void RemoveLayers(IReadOnlyCollection<int> layers)
    {
        RemoveCalls++;
        foreach (int layer in layers.OrderDescending())
        {
            _removed.Add(_layers[layer]);
            _layers.RemoveAt(layer);
        }
    }
}

/// <summary>A metric with scores given per original layer (and optionally per perturbation set), recording its requests.</summary>
internal sealed class FixedMetric(string name, Func<IPrunableModel, int, double> score, bool usesPerturbations = false) : IImportanceMetric
{
    public FixedMetric(string name, double[] byOriginalLayer, bool usesPerturbations = false)
        : this(name, (model, layer) => byOriginalLayer[model.OriginalLayerIndices[layer]], usesPerturbations)
    {
    }

    public string Name => name;

    public bool UsesPerturbations => usesPerturbations;

    /// <summary>Per-set score of a current layer (set, model, layer), or null for no per-set scores.</summary>
    public Func<int, IPrunableModel, int, double>? PerSet { get; init; }

    /// <summary>Called at the start of each scoring, with the token.</summary>
    public Action<ImportanceRequest, CancellationToken>? OnScore { get; init; }

    public List<ImportanceRequest> Requests { get; } = [];

    public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
    {
        Requests.Add(request);
        OnScore?.Invoke(request, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        IPrunableModel model = request.Model;
        double[] scores = [.. Enumerable.Range(0, model.LayerCount).Select(l => score(model, l))];
        IReadOnlyList<IReadOnlyList<double>>? perSet = PerSet is null
            ? null
            : [.. Enumerable.Range(0, request.PerturbationSets.Count).Select(s => (IReadOnlyList<double>)[.. Enumerable.Range(0, model.LayerCount).Select(l => PerSet(s, model, l))])];
        request.Progress?.Report(new ScoringProgress(Name, 1, 1));
        return ValueTask.FromResult(new LayerScores(scores, perSet));
    }
}

/// <summary>An IProgress that records synchronously (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class ListProgress<T> : IProgress<T>
{
    public List<T> Items { get; } = [];

    public void Report(T value) => Items.Add(value);
}

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "pip-core-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name, string? contents = null)
    {
        string path = System.IO.Path.Combine(Path, name);
        if (contents is not null)
        {
            System.IO.File.WriteAllText(path, contents);
        }

        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Texts shared by tests.</summary>
internal static class Texts
{
    public const string Long =
        "The river flowed past the old mill where the miller kept his grain. Every morning the children walked along " +
        "the bank, watching boats carry timber and stone toward the harbour. Later that summer a storm broke the dam, " +
        "and the water rose over the fields, drowning the wheat and scattering the sheep across the hills. The village " +
        "gathered in the church to decide what should be done, and after a long debate they agreed to rebuild the wall " +
        "with their own hands before the winter came.";

    public static CalibrationSample[] Samples(int count) =>
        [.. Enumerable.Range(0, count).Select(i => new CalibrationSample(i, $"Sample {i}: " + Long))];
}
