using Pip.Torch.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Pruning.Width;

/// <summary>
/// The parts of the width units of a layer: each projection a unit spans, and how its weights map onto units. A
/// key/value group j of G query heads of width d spans q_proj rows j·G·d … (j+1)·G·d−1, k_proj and v_proj rows
/// j·d … (j+1)·d−1, and o_proj columns j·G·d … (j+1)·G·d−1; a channel c spans gate_proj and up_proj row c and
/// down_proj column c. Biases are not scored (LLM-Pruner scores weights only). In OPT (no GQA) a unit of heads is
/// one head h of width d: q_proj, k_proj and v_proj rows h·d … (h+1)·d−1 and out_proj columns h·d … (h+1)·d−1; a
/// channel c is fc1 row c and fc2 column c.
/// </summary>
internal static class WidthUnitParts
{
    /// <summary>Whether a part's unit indices run along the weight's rows (outputs) or columns (inputs).</summary>
    public enum Axis
    {
        Rows,
        Columns,
    }

    /// <summary>One projection of a unit kind.</summary>
    public sealed record Part(WidthUnitKind Kind, string Name, Linear Linear, Axis Axis);

    /// <summary>
    /// The parts of one kind of a decoder layer (<see cref="LlamaDecoderLayer"/> or <see cref="OptDecoderLayer"/>), in
    /// the order q, k, v, o (heads) or gate, up, down / fc1, fc2 (channels); the last part is the one whose columns
    /// the units span (o_proj/out_proj, down_proj/fc2).
    /// </summary>
    public static IReadOnlyList<Part> Of(nn.Module layer, WidthUnitKind kind) => (layer, kind) switch
    {
        (LlamaDecoderLayer l, WidthUnitKind.Heads) =>
        [
            new(kind, "q_proj", l.SelfAttn.QProj, Axis.Rows), new(kind, "k_proj", l.SelfAttn.KProj, Axis.Rows),
            new(kind, "v_proj", l.SelfAttn.VProj, Axis.Rows), new(kind, "o_proj", l.SelfAttn.OProj, Axis.Columns),
        ],
        (LlamaDecoderLayer l, _) =>
            [new(kind, "gate_proj", l.Mlp.GateProj, Axis.Rows), new(kind, "up_proj", l.Mlp.UpProj, Axis.Rows), new(kind, "down_proj", l.Mlp.DownProj, Axis.Columns)],
        (OptDecoderLayer l, WidthUnitKind.Heads) =>
        [
            new(kind, "q_proj", l.SelfAttn.QProj, Axis.Rows), new(kind, "k_proj", l.SelfAttn.KProj, Axis.Rows),
            new(kind, "v_proj", l.SelfAttn.VProj, Axis.Rows), new(kind, "out_proj", l.SelfAttn.OutProj, Axis.Columns),
        ],
        (OptDecoderLayer l, _) => [new(kind, "fc1", l.Fc1, Axis.Rows), new(kind, "fc2", l.Fc2, Axis.Columns)],
        _ => throw Unsupported(layer),
    };

    /// <summary>The projection whose input columns the units of a kind span: o_proj/out_proj (heads) or down_proj/fc2 (channels).</summary>
    public static Part Output(nn.Module layer, WidthUnitKind kind) => Of(layer, kind)[^1];

    /// <summary>The number of units of a kind in a layer (key/value groups or heads; intermediate channels).</summary>
    public static int Count(nn.Module layer, WidthUnitKind kind) => (layer, kind) switch
    {
        (LlamaDecoderLayer l, WidthUnitKind.Heads) => (int)l.SelfAttn.NumKeyValueHeads,
        (LlamaDecoderLayer l, _) => (int)l.Mlp.IntermediateSize,
        (OptDecoderLayer l, WidthUnitKind.Heads) => (int)l.SelfAttn.NumHeads,
        (OptDecoderLayer l, _) => (int)l.FfnDim,
        _ => throw Unsupported(layer),
    };

    /// <summary>
    /// The parameters one unit of a kind holds in a layer: per part, its rows (with their bias entries) or its columns
    /// (a bias on a column-spanning projection is kept whole and is not counted).
    /// </summary>
    public static long ParameterCount(nn.Module layer, WidthUnitKind kind)
    {
        long units = Count(layer, kind), total = 0;
        foreach (var part in Of(layer, kind))
        {
            var shape = part.Linear.weight!.shape;
            if (part.Axis == Axis.Rows)
            {
                long width = shape[0] / units;
                total += width * shape[1] + (part.Linear.bias is null ? 0 : width);
            }
            else
            {
                total += shape[1] / units * shape[0];
            }
        }

        return total;
    }

    /// <summary>
    /// One part's value per unit from an element-wise salience S (the weight's shape): element-wise, Σ|S| over the
    /// unit's rows (or columns); vector-wise, |Σ S| per row (or column), summed over the unit's rows (or columns).
    /// </summary>
    public static double[] UnitSums(Tensor salience, Axis axis, int units, bool vectorwise)
    {
        using var scope = NewDisposeScope();
        var s = salience.to_type(ScalarType.Float32);
        int dim = axis == Axis.Rows ? 1 : 0;
        var perIndex = vectorwise ? s.sum(dim).abs() : s.abs().sum(dim);
        using var perUnit = perIndex.view(units, -1).sum(1).to_type(ScalarType.Float64).cpu();
        return perUnit.data<double>().ToArray();
    }

    /// <summary>Scores the units of one kind of a layer: one salience per part, reduced per unit, then across parts.</summary>
    public static double[] Score(nn.Module layer, WidthUnitKind kind, Func<Part, Tensor> salience, bool vectorwise, WidthGroupReduction reduction)
    {
        int units = Count(layer, kind);
        var parts = Of(layer, kind).Select(p =>
        {
            using var scope = NewDisposeScope();
            return (IReadOnlyList<double>)UnitSums(salience(p), p.Axis, units, vectorwise);
        }).ToArray();
        return GroupReduction.ReduceUnits(parts, reduction);
    }

    /// <summary>The kinds of a request.</summary>
    public static IReadOnlyList<WidthUnitKind> Kinds(WidthUnits units) => WidthAllocator.Kinds(units);

    /// <summary>Per current layer a list (empty for layers not scored), or null when the kind is not asked for.</summary>
    public static IReadOnlyList<IReadOnlyList<double>>? Collect(WidthImportanceRequest request, WidthUnitKind kind, IReadOnlyDictionary<(int Layer, WidthUnitKind Kind), double[]> scores) =>
        !Kinds(request.Units).Contains(kind) ? null :
        [.. Enumerable.Range(0, request.Model.LayerCount).Select(l => scores.TryGetValue((l, kind), out var s) ? (IReadOnlyList<double>)s : [])];

    /// <summary>The request's token sequences, cut to <paramref name="maxTokens"/>, keeping those with at least <paramref name="minTokens"/>.</summary>
    public static IReadOnlyList<IReadOnlyList<int>> Sequences(WidthImportanceRequest request, int maxTokens, int minTokens, string metric)
    {
        var sequences = request.Samples.Select(s => request.Model.Tokenize(s.Text, maxTokens)).Where(s => s.Count >= minTokens).ToArray();
        if (sequences.Length == 0)
            throw new ArgumentException($"Width metric '{metric}' needs at least one calibration sample of {minTokens} or more tokens; the samples are too short.", nameof(request));
        return sequences;
    }

    /// <summary>Checks the requested layers.</summary>
    public static HashSet<int> Layers(WidthImportanceRequest request, ICausalLMModule module) => Layers(request, module.Layers.Count);

    /// <summary>Checks the requested layers against a layer count.</summary>
    public static HashSet<int> Layers(WidthImportanceRequest request, int layerCount)
    {
        var bad = request.Layers.Where(l => l < 0 || l >= layerCount).ToArray();
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(nameof(request), $"Layers {string.Join(", ", bad)} do not exist: the model has {layerCount}.");
        return [.. request.Layers];
    }

    private static NotSupportedException Unsupported(nn.Module layer) =>
        new($"Width units are defined for Llama-family and OPT decoder layers; got {layer.GetType().Name}.");
}
