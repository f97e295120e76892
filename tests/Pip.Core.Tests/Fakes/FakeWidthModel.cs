namespace Pip.Tests.Fakes;

/// <summary>A width-prunable fake: each layer has key/value groups and channels of fixed parameter sizes plus a fixed rest.</summary>
internal sealed class FakeWidthModel : IWidthPrunableModel
{
    private readonly int[] _heads;
    private readonly int[] _channels;

    public FakeWidthModel(int layers, int heads = 4, int channels = 32, long headParameters = 40, long channelParameters = 3, long layerRest = 10, long otherParameters = 500)
    {
        _heads = Enumerable.Repeat(heads, layers).ToArray();
        _channels = Enumerable.Repeat(channels, layers).ToArray();
        HeadParameters = headParameters;
        ChannelParameters = channelParameters;
        LayerRest = layerRest;
        OtherParameters = otherParameters;
    }

    public long HeadParameters { get; }

    public long ChannelParameters { get; }

    public long LayerRest { get; }

    public long OtherParameters { get; }

    public List<WidthRemovalPlan> Plans { get; } = [];

    public string? Obstacle { get; set; }

    public string Architecture => "FakeForCausalLM";

    public int LayerCount => _heads.Length;

    public long ParameterCount => OtherParameters + Enumerable.Range(0, LayerCount).Sum(GetLayerParameterCount);

    public IReadOnlyList<int> OriginalLayerIndices => [.. Enumerable.Range(0, LayerCount)];

    public long GetLayerParameterCount(int layer) => LayerRest + _heads[layer] * HeadParameters + _channels[layer] * ChannelParameters;

    public IReadOnlyList<int> Tokenize(string text) => [1, .. text.Select(c => (int)c)];

    public ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(1.0);

    public void RemoveLayers(IReadOnlyCollection<int> layers) => throw new NotSupportedException();

    public int GetUnitCount(int layer, WidthUnitKind kind) => kind == WidthUnitKind.Heads ? _heads[layer] : _channels[layer];

    public long GetUnitParameterCount(int layer, WidthUnitKind kind) => kind == WidthUnitKind.Heads ? HeadParameters : ChannelParameters;

    public string? GetBiasCompensationObstacle(WidthUnitKind kind) => Obstacle;

    public void RemoveUnits(WidthRemovalPlan plan)
    {
        Plans.Add(plan);
        foreach (var (layer, units) in plan.Heads) _heads[layer] -= units.Distinct().Count();
        foreach (var (layer, units) in plan.Channels) _channels[layer] -= units.Distinct().Count();
    }
}

/// <summary>A width metric whose scores are given: unit u of layer l scores <c>score(l, kind, u)</c>.</summary>
internal sealed class FakeWidthMetric(string name, Func<int, WidthUnitKind, int, double> score) : IWidthImportanceMetric
{
    public string Name { get; } = name;

    public WidthImportanceRequest? LastRequest { get; private set; }

    public ValueTask<WidthScores> ScoreAsync(WidthImportanceRequest request, CancellationToken cancellationToken = default)
    {
        LastRequest = request;
        IReadOnlyList<IReadOnlyList<double>> Of(WidthUnitKind kind) =>
            [.. Enumerable.Range(0, request.Model.LayerCount).Select(l => request.Layers.Contains(l)
                ? (IReadOnlyList<double>)[.. Enumerable.Range(0, request.Model.GetUnitCount(l, kind)).Select(u => score(l, kind, u))]
                : [])];
        return ValueTask.FromResult(new WidthScores(Of(WidthUnitKind.Heads), Of(WidthUnitKind.Channels))
        {
            HeadInputMeans = [.. Enumerable.Range(0, request.Model.LayerCount).Select(_ => (IReadOnlyList<double>)[0.5])],
        });
    }
}
