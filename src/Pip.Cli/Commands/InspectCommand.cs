using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Pip.Checkpoints;
using Pip.Cli.Infrastructure;
using Pip.Torch.Evaluation;

namespace Pip.Cli.Commands;

/// <summary>
/// <c>inspect</c>: the configuration of a model folder and its parameter counts and weight memory, read from
/// config.json and the safetensors headers (no weights are loaded, so it is instant even for large models).
/// </summary>
internal static partial class InspectCommand
{
    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var json = CommonOptions.Json();
        var tpot = new Option<bool>("--tpot")
        {
            Description = "Also load the model and time greedy decoding with a KV cache (the papers' Table 1): median time per output token over --runs runs of --new-tokens tokens, after --warmup unmeasured runs.",
        };
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens generated per timed run (with --tpot).", DefaultValueFactory = _ => 128, HelpName = "N" }.AtLeast(1);
        var runs = new Option<int>("--runs") { Description = "Measured runs (with --tpot); the median is reported.", DefaultValueFactory = _ => 5, HelpName = "N" }.AtLeast(1);
        var warmup = new Option<int>("--warmup") { Description = "Unmeasured warm-up runs before the measured ones (with --tpot).", DefaultValueFactory = _ => 2, HelpName = "N" }.AtLeast(0);
        var prompt = new Option<string>("--prompt") { Description = "The prompt of the timed runs (with --tpot).", DefaultValueFactory = _ => "The history of the city" };
        var dtype = CommonOptions.Dtype("The type to compute in for --tpot (default: the checkpoint's torch_dtype where this device computes it fast, else float32).");
        var device = CommonOptions.Device();
        var command = new Command("inspect", "Show a model folder's configuration, parameter counts (total, embeddings, layers, head) and weight memory; with --tpot, the time per output token.")
        {
            model, json, tpot, newTokens, runs, warmup, prompt, dtype, device, CommonOptions.AllowNonFinite(),
        };
        CommandRunner.SetBody(command, context, run =>
        {
            var folder = ModelLoading.ModelFolderOrDefault(run.Get(model), context);
            var report = Inspect(folder);
            if (run.Get(tpot))
            {
                using var lm = ModelLoading.Load(run, folder, run.Get(dtype), run.Require(device));
                var options = new DecodeBenchmarkOptions { NewTokens = run.Require(newTokens), MeasuredRuns = run.Require(runs), WarmupRuns = run.Require(warmup) };
                var timing = ModelStatisticsMeter.MeasureDecoding(lm.Model, lm.Tokenize(run.Require(prompt)), options, cancellationToken: run.CancellationToken);
                report = report with
                {
                    Decoding = new DecodingReport(lm.Model.Dtype.ToString().ToLowerInvariant(), lm.Model.Device.ToString(), options.NewTokens, options.WarmupRuns,
                        options.MeasuredRuns, timing.MedianTimePerOutputToken * 1000, timing.MedianTimeToFirstToken * 1000),
                };
            }

            if (run.Get(json)) ResultWriter.WriteJson(run.Out, report);
            else WriteTable(run.Out, report);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Reads the report of a model folder.</summary>
    internal static InspectReport Inspect(string folder)
    {
        var full = ModelLoading.RequireModelFolder(folder);
        using var checkpoint = CheckpointFolder.Open(full);
        var config = checkpoint.LoadModelConfig();
        var opt = config as OptConfig;
        var llama = config as LlamaConfig;

        long embeddings = 0, head = 0, finalNorm = 0, other = 0, bytes = 0;
        var layers = new long[config.NumHiddenLayers];
        var dtypes = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var name in checkpoint.TensorNames)
        {
            var info = checkpoint.GetInfo(name);
            // A tied model's checkpoint may store lm_head.weight anyway; the model ignores it, so it is not counted.
            if (name == "lm_head.weight" && config.TieWordEmbeddings) continue;
            var count = info.ElementCount;
            bytes += info.ByteLength;
            dtypes.Add(DtypeName(info.DType));
            var layer = opt is null ? LayerPattern().Match(name) : OptLayerPattern().Match(name);
            // OPT: the position table and project_in count as embeddings, project_out with the final norm.
            var part = opt is null ? name : (name.StartsWith("decoder.", StringComparison.Ordinal) ? "model." + name : name);
            if (part is "model.embed_tokens.weight" or "model.decoder.embed_tokens.weight" or "model.decoder.embed_positions.weight" or "model.decoder.project_in.weight") embeddings += count;
            else if (name == "lm_head.weight") head += count;
            else if (part is "model.norm.weight" or "model.decoder.final_layer_norm.weight" or "model.decoder.final_layer_norm.bias" or "model.decoder.project_out.weight") finalNorm += count;
            else if (layer.Success && int.TryParse(layer.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l < layers.Length) layers[l] += count;
            else other += count;
        }

        var parameters = new ParameterReport(embeddings + head + finalNorm + layers.Sum() + other, embeddings, layers.Sum(), layers, finalNorm, head, other);
        // Heterogeneous checkpoints (per_layer_config, e.g. after non-uniform width pruning): each layer's own sizes.
        IReadOnlyList<LayerSizes>? perLayer =
            llama is { IsHeterogeneous: true } ? [.. Enumerable.Range(0, llama.NumHiddenLayers).Select(l => llama.ShapeOf(l)).Select(x => new LayerSizes(x.NumAttentionHeads, x.NumKeyValueHeads, x.IntermediateSize))]
            : opt is { IsHeterogeneous: true } ? [.. Enumerable.Range(0, opt.NumHiddenLayers).Select(l => opt.ShapeOf(l)).Select(x => new LayerSizes(x.NumAttentionHeads, x.NumAttentionHeads, x.FfnDim))]
            : null;
        return new InspectReport(
            Model: full,
            Family: llama?.Family.ToString() ?? "OPT",
            Layers: config.NumHiddenLayers,
            HiddenSize: config.HiddenSize,
            AttentionHeads: config.NumAttentionHeads,
            KeyValueHeads: llama?.NumKeyValueHeads ?? config.NumAttentionHeads,
            HeadDim: llama?.HeadDim ?? opt!.HeadDim,
            IntermediateSize: llama?.IntermediateSize ?? opt!.FfnDim,
            VocabSize: config.VocabSize,
            Dtype: dtypes.Count == 0 ? config.TorchDtype ?? "float32" : string.Join('+', dtypes),
            TiedEmbeddings: config.TieWordEmbeddings,
            RopeTheta: llama?.RopeTheta,
            RopeScaling: llama?.RopeScaling?.RopeType,
            MaxPositionEmbeddings: config.MaxPositionEmbeddings,
            Shards: checkpoint.ShardFiles.Count,
            Parameters: parameters,
            WeightBytes: bytes,
            WeightGib: ResultWriter.Gib(bytes))
        {
            PerLayerSizes = perLayer,
        };
    }

    private static void WriteTable(TextWriter output, InspectReport r)
    {
        static string N(long v) => ResultWriter.Count(v);
        var p = r.Parameters;
        var distinct = p.PerLayer.Distinct().ToArray();
        var layerText = p.PerLayer.Count == 0 ? "0"
            : distinct.Length == 1 ? $"{N(p.Layers)} ({p.PerLayer.Count} × {N(distinct[0])})"
            : $"{N(p.Layers)} (per layer: {string.Join(", ", p.PerLayer.Select(N))})";
        List<(string, string)> rows =
        [
            ("Model", r.Model),
            ("Family", r.Family),
            ("Layers", r.Layers.ToString(CultureInfo.InvariantCulture)),
            ("Hidden size", r.HiddenSize.ToString(CultureInfo.InvariantCulture)),
            ("Heads / KV heads", $"{r.AttentionHeads} / {r.KeyValueHeads}"),
            ("Head dim", r.HeadDim.ToString(CultureInfo.InvariantCulture)),
            ("FFN size", r.IntermediateSize.ToString(CultureInfo.InvariantCulture)),
            ("Vocabulary", N(r.VocabSize)),
            ("Dtype", r.Dtype),
            ("Tied embeddings", r.TiedEmbeddings ? "yes" : "no"),
            r.RopeTheta is { } theta
                ? ("RoPE", $"theta {theta.ToString(CultureInfo.InvariantCulture)}" + (r.RopeScaling is null ? "" : $", {r.RopeScaling} scaling") + $", max positions {N(r.MaxPositionEmbeddings)}")
                : ("Positions", $"learned, max positions {N(r.MaxPositionEmbeddings)}"),
            ("Parameters", N(p.Total)),
            ("  embeddings", N(p.Embeddings)),
            ("  layers", layerText),
            ("  final norm", N(p.FinalNorm)),
            ("  LM head", r.TiedEmbeddings ? "tied to the embeddings" : N(p.LmHead)),
        ];
        if (p.Other > 0) rows.Add(("  other", N(p.Other)));
        if (r.PerLayerSizes is { } sizes)
        {
            // Runs of equal layers: "0-1: 8/4 heads, FFN 352; 2-10: 6/3 heads, FFN 226; ..."
            var runs = new List<string>();
            for (int start = 0; start < sizes.Count;)
            {
                int end = start;
                while (end + 1 < sizes.Count && sizes[end + 1] == sizes[start]) end++;
                var x = sizes[start];
                runs.Add($"{(end == start ? $"{start}" : $"{start}-{end}")}: {x.AttentionHeads}/{x.KeyValueHeads} heads, FFN {x.IntermediateSize}");
                start = end + 1;
            }

            rows.Add(("Per-layer sizes", string.Join("; ", runs)));
        }

        rows.Add(("Weight memory", $"{ResultWriter.Number(r.WeightGib, 3)} GiB ({N(r.WeightBytes)} bytes in {r.Shards} file{(r.Shards == 1 ? "" : "s")})"));
        if (r.Decoding is { } d)
        {
            rows.Add(("Time per output token", $"{ResultWriter.Number(d.TimePerOutputTokenMs, 3)} ms (median of {d.MeasuredRuns} runs of {d.NewTokens} tokens after {d.WarmupRuns} warm-up; greedy, KV cache, {d.Dtype} on {d.Device})"));
            rows.Add(("Time to first token", $"{ResultWriter.Number(d.TimeToFirstTokenMs, 3)} ms"));
        }

        ResultWriter.WriteTable(output, rows);
    }

    private static string DtypeName(SafeTensorDType type) => type switch
    {
        SafeTensorDType.F32 => "float32",
        SafeTensorDType.BF16 => "bfloat16",
        SafeTensorDType.F16 => "float16",
        _ => type.ToHeaderString().ToLowerInvariant(),
    };

    [GeneratedRegex(@"^model\.layers\.(\d+)\.")]
    private static partial Regex LayerPattern();

    [GeneratedRegex(@"^(?:model\.)?decoder\.layers\.(\d+)\.")]
    private static partial Regex OptLayerPattern();
}

/// <summary>Parameter counts read from a checkpoint.</summary>
/// <param name="Total">All counted parameters (a stored but ignored tied head excluded).</param>
/// <param name="Embeddings">The token embedding.</param>
/// <param name="Layers">All decoder layers.</param>
/// <param name="PerLayer">Each decoder layer.</param>
/// <param name="FinalNorm">The final norm.</param>
/// <param name="LmHead">The untied output projection (0 when tied).</param>
/// <param name="Other">Tensors that belong to none of the above.</param>
internal sealed record ParameterReport(long Total, long Embeddings, long Layers, IReadOnlyList<long> PerLayer, long FinalNorm, long LmHead, long Other);

/// <summary>The result of <c>inspect</c>.</summary>
internal sealed record InspectReport(string Model, string Family, int Layers, int HiddenSize, int AttentionHeads, int KeyValueHeads, int HeadDim,
    int IntermediateSize, int VocabSize, string Dtype, bool TiedEmbeddings, double? RopeTheta, string? RopeScaling, int MaxPositionEmbeddings,
    int Shards, ParameterReport Parameters, long WeightBytes, double WeightGib)
{
    /// <summary>The decoding benchmark (with <c>--tpot</c>), or null.</summary>
    public DecodingReport? Decoding { get; init; }

    /// <summary>Each layer's sizes when the checkpoint's layers differ (per_layer_config), or null.</summary>
    public IReadOnlyList<LayerSizes>? PerLayerSizes { get; init; }
}

/// <summary>One layer's sizes in a heterogeneous checkpoint.</summary>
internal sealed record LayerSizes(int AttentionHeads, int KeyValueHeads, int IntermediateSize);

/// <summary>Greedy decoding timings of <c>inspect --tpot</c>.</summary>
internal sealed record DecodingReport(string Dtype, string Device, int NewTokens, int WarmupRuns, int MeasuredRuns, double TimePerOutputTokenMs, double TimeToFirstTokenMs);
