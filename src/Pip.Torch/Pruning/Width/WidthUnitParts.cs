using Pip.Torch.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Pruning.Width;

/// <summary>
/// The parts of the width units of a layer: each projection a unit spans, and how its weights map onto units. A
/// key/value group j of G query heads of width d spans q_proj rows j·G·d … (j+1)·G·d−1, k_proj and v_proj rows
/// j·d … (j+1)·d−1, and o_proj columns j·G·d … (j+1)·G·d−1; a channel c spans gate_proj and up_proj row c and
/// down_proj column c. Biases are not scored (LLM-Pruner scores weights only).
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

    /// <summary>The parts of one kind, in the order q, k, v, o (heads) or gate, up, down (channels).</summary>
    public static IReadOnlyList<Part> Of(LlamaDecoderLayer layer, WidthUnitKind kind)
    {
        if (kind == WidthUnitKind.Heads)
        {
            var a = layer.SelfAttn;
            return
            [
                new(kind, "q_proj", a.QProj, Axis.Rows), new(kind, "k_proj", a.KProj, Axis.Rows),
                new(kind, "v_proj", a.VProj, Axis.Rows), new(kind, "o_proj", a.OProj, Axis.Columns),
            ];
        }

        var m = layer.Mlp;
        return [new(kind, "gate_proj", m.GateProj, Axis.Rows), new(kind, "up_proj", m.UpProj, Axis.Rows), new(kind, "down_proj", m.DownProj, Axis.Columns)];
    }

    /// <summary>The number of units of a kind in a layer.</summary>
    public static int Count(LlamaDecoderLayer layer, WidthUnitKind kind) =>
        kind == WidthUnitKind.Heads ? (int)layer.SelfAttn.NumKeyValueHeads : (int)layer.Mlp.IntermediateSize;

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
    public static double[] Score(LlamaDecoderLayer layer, WidthUnitKind kind, Func<Part, Tensor> salience, bool vectorwise, WidthGroupReduction reduction)
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
    public static HashSet<int> Layers(WidthImportanceRequest request, LlamaForCausalLM module)
    {
        var bad = request.Layers.Where(l => l < 0 || l >= module.Layers.Count).ToArray();
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(nameof(request), $"Layers {string.Join(", ", bad)} do not exist: the model has {module.Layers.Count}.");
        return [.. request.Layers];
    }
}
