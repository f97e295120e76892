using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Cli.Infrastructure;

namespace Pip.Cli.Commands;

/// <summary><c>convert</c>: turns a checkpoint of another format (llama2.c) into a Hugging Face folder.</summary>
internal static class ConvertCommand
{
    /// <summary>The formats <c>--from</c> accepts.</summary>
    public static readonly IReadOnlyList<string> Formats = ["llama2c"];

    public static Command Create(CliContext context)
    {
        var input = new Argument<string>("MODEL") { Description = "The checkpoint to convert: a llama2.c model .bin (the original run.c format)." };
        var from = new Option<string>("--from") { Description = "The format of MODEL: llama2c.", Required = true, HelpName = "FORMAT" };
        from.AcceptOnlyFromAmong([.. Formats]);
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "The model's tokenizer: llama2.c's tokenizer .bin (as tokenizer.bin, tok512.bin) or the SentencePiece .model it was exported from.",
            Required = true,
            HelpName = "FILE",
        };
        var output = CommonOptions.Out("The Hugging Face folder to create (config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json; written atomically).");
        var overwrite = CommonOptions.Overwrite();
        var json = CommonOptions.Json();

        var command = new Command("convert", "Convert a llama2.c checkpoint and its tokenizer into a Hugging Face Llama folder that Pip and transformers load.")
        {
            input, from, tokenizer, output, overwrite, json,
        };
        CommandRunner.SetBody(command, context, run =>
        {
            var folder = ModelLoading.CheckOutputFolder(run.Require(output), run.Get(overwrite));
            var model = run.ParseResult.GetRequiredValue(input);
            var clock = Stopwatch.StartNew();
            run.Logger.LogInformation("Converting llama2.c checkpoint {Model} with tokenizer {Tokenizer}.", Path.GetFullPath(model), Path.GetFullPath(run.Require(tokenizer)));
            var result = Llama2CConverter.Convert(model, run.Require(tokenizer), folder, run.Get(overwrite), run.CancellationToken);
            var config = result.Config;
            var summary = new ConvertResult(result.OutputFolder, Path.GetFullPath(model), run.Require(from), result.ParameterCount, config.NumHiddenLayers,
                config.HiddenSize, config.IntermediateSize, config.NumAttentionHeads, config.NumKeyValueHeads, config.VocabSize, config.MaxPositionEmbeddings,
                config.TieWordEmbeddings, result.TokenizerTokens, result.TokenizerMerges, Math.Round(clock.Elapsed.TotalSeconds, 3));
            if (run.Get(json)) ResultWriter.WriteJson(run.Out, summary);
            else
            {
                ResultWriter.WriteTable(run.Out,
                [
                    ("Created", summary.Model),
                    ("From", $"{summary.Source} ({summary.Format})"),
                    ("Parameters", ResultWriter.Count(summary.Parameters)),
                    ("Layers", summary.Layers.ToString(CultureInfo.InvariantCulture)),
                    ("Hidden / FFN", $"{summary.HiddenSize} / {summary.IntermediateSize}"),
                    ("Heads / KV heads", $"{summary.Heads} / {summary.KeyValueHeads}"),
                    ("Vocabulary", $"{ResultWriter.Count(summary.VocabSize)}{(summary.TiedEmbeddings ? " (tied embeddings)" : "")}"),
                    ("Context", summary.MaxPositionEmbeddings.ToString(CultureInfo.InvariantCulture)),
                    ("Tokenizer", $"{ResultWriter.Count(summary.TokenizerTokens)} tokens ({ResultWriter.Count(summary.TokenizerMerges)} merges)"),
                    ("Time", $"{ResultWriter.Number(summary.Seconds, 1)} s"),
                ]);
            }
            return ExitCodes.Success;
        });
        return command;
    }
}

/// <summary>The result of <c>convert</c>.</summary>
internal sealed record ConvertResult(string Model, string Source, string Format, long Parameters, int Layers, int HiddenSize, int IntermediateSize,
    int Heads, int KeyValueHeads, int VocabSize, int MaxPositionEmbeddings, bool TiedEmbeddings, int TokenizerTokens, int TokenizerMerges, double Seconds);
