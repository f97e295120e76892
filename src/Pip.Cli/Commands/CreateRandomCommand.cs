using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Cli.Infrastructure;
using Pip.Torch.Checkpoints;
using Pip.Tokenization;
using static TorchSharp.torch;

namespace Pip.Cli.Commands;

/// <summary>
/// <c>create-random</c>: writes a randomly initialised Llama or OPT checkpoint (config.json, safetensors weights,
/// sharded above 5 GB) with a byte-level BPE tokenizer, for tests and benchmarks. The weights are drawn and written
/// tensor by tensor (<see cref="RandomCheckpoint"/>), so a model of any size fits: the whole model is never in memory.
/// </summary>
internal static class CreateRandomCommand
{
    /// <summary>The BOS token of generated tokenizers (Llama 3's name).</summary>
    public const string BosToken = "<|begin_of_text|>";

    /// <summary>The EOS token of generated tokenizers (Llama 3's name).</summary>
    public const string EosToken = "<|end_of_text|>";

    public static Command Create(CliContext context)
    {
        var output = CommonOptions.Out("The checkpoint folder to create (written atomically).");
        var preset = new Option<string>("--preset")
        {
            Description = "The model shape: tiny (~0.25 M parameters, for tests), small (~28 M), llama-3.2-1b (the shape of Llama-3.2-1B), llama3-8b (Llama-3.1-8B: hidden 4096, 32 layers, untied), llama3-70b (Llama-3.1-70B: hidden 8192, 80 layers) or opt-tiny (an OPT model of ~0.2 M parameters).",
            DefaultValueFactory = _ => "tiny",
        };
        preset.AcceptOnlyFromAmong([.. ModelPresets.Names]);
        var layers = new Option<int?>("--layers")
        {
            Description = "Override the preset's number of decoder layers (e.g. 8 layers of llama3-8b's width for a benchmark).",
            HelpName = "N",
        }.AtLeast(1);
        var seed = new Option<long>("--seed") { Description = "The random seed of the weights.", DefaultValueFactory = _ => 0 };
        var dtype = CommonOptions.Dtype("The type to create and store the weights in (default float32).");
        var corpus = new Option<string?>("--tokenizer-corpus")
        {
            Description = "A UTF-8 text file to train a byte-level BPE tokenizer on; without it the tokenizer has just the 256 byte tokens plus BOS/EOS.",
            HelpName = "FILE",
        };
        var tokenizerVocab = new Option<int?>("--tokenizer-vocab-size")
        {
            Description = "With --tokenizer-corpus: the most tokens the trained tokenizer may have (default: the model's vocabulary size).",
            HelpName = "N",
        }.AtLeast(258);
        var overwrite = CommonOptions.Overwrite();
        var json = CommonOptions.Json();

        var command = new Command("create-random", "Write a randomly initialised Llama or OPT checkpoint (config, safetensors weights, tokenizer).")
        {
            output, preset, layers, seed, dtype, corpus, tokenizerVocab, overwrite, json,
        };
        CommandRunner.SetBody(command, context, run =>
        {
            var ct = run.CancellationToken;
            var folder = ModelLoading.CheckOutputFolder(run.Require(output), run.Get(overwrite));
            var presetName = run.Require(preset);
            var type = run.Get(dtype) ?? ScalarType.Float32;
            var config = ModelPresets.Get(presetName);
            if (run.Get(layers) is { } layerCount)
            {
                config = config switch
                {
                    OptConfig opt => opt with { NumHiddenLayers = layerCount },
                    LlamaConfig llama => llama with { NumHiddenLayers = layerCount },
                    _ => throw new InvalidOperationException($"Preset '{presetName}' has an unknown configuration type."),
                };
            }
            var clock = Stopwatch.StartNew();

            {
                var tokenizer = BuildTokenizer(run.Get(corpus), run.Get(tokenizerVocab), config.VocabSize, run.Logger);
                if (tokenizer.Tokens.Count > config.VocabSize)
                    throw new CliInputException($"The tokenizer has {tokenizer.Tokens.Count} tokens, more than the {config.VocabSize} of preset '{presetName}'; lower --tokenizer-vocab-size.");
                var bos = tokenizer.IdOf(BosToken);
                int[] eos = [tokenizer.IdOf(EosToken)!.Value];
                config = config switch
                {
                    OptConfig opt => opt with { BosTokenId = bos, EosTokenIds = eos },
                    LlamaConfig llama => llama with { BosTokenId = bos, EosTokenIds = eos },
                    _ => throw new InvalidOperationException($"Preset '{presetName}' has an unknown configuration type."),
                };
                ct.ThrowIfCancellationRequested();

                run.Logger.LogInformation("Creating a random {Preset} model ({Layers} layers, hidden {Hidden}, vocabulary {Vocab}) in {Dtype}, seed {Seed}.",
                    presetName, config.NumHiddenLayers, config.HiddenSize, config.VocabSize, CommonOptions.DtypeName(type), run.Get(seed));
                run.Logger.LogInformation("Writing {Folder} tensor by tensor.", folder);
                // The tokenizer files are written straight into the checkpoint's own temporary folder: no staging folder to leave behind.
                var parameters = RandomCheckpoint.Write(folder, config, run.Get(seed), type, options: new CheckpointSaveOptions
                {
                    Overwrite = run.Get(overwrite),
                    WriteExtraFiles = (temp, _) => HfTokenizerWriter.WriteByteLevelBpe(temp, tokenizer, BosToken, EosToken, addBosToken: true),
                }, cancellationToken: ct);

                var result = new CreateRandomResult(folder, presetName, CommonOptions.DtypeName(type), run.Get(seed), parameters,
                    config.NumHiddenLayers, config.VocabSize, tokenizer.Tokens.Count, tokenizer.Merges.Count, Math.Round(clock.Elapsed.TotalSeconds, 3));
                if (run.Get(json)) ResultWriter.WriteJson(run.Out, result);
                else
                {
                    ResultWriter.WriteTable(run.Out,
                    [
                        ("Created", result.Model),
                        ("Preset", result.Preset),
                        ("Parameters", ResultWriter.Count(result.Parameters)),
                        ("Layers", result.Layers.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                        ("Dtype", result.Dtype),
                        ("Seed", result.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                        ("Model vocabulary", ResultWriter.Count(result.VocabSize)),
                        ("Tokenizer", $"{ResultWriter.Count(result.TokenizerTokens)} tokens ({ResultWriter.Count(result.TokenizerMerges)} merges)"),
                        ("Time", $"{ResultWriter.Number(result.Seconds, 1)} s"),
                    ]);
                }
                return ExitCodes.Success;
            }
        });
        return command;
    }

    /// <summary>A BPE trained on the corpus, or the plain byte-level vocabulary (bytes 0–255, then BOS, EOS).</summary>
    internal static ByteLevelBpeModel BuildTokenizer(string? corpusFile, int? vocabSize, int modelVocab, ILogger logger)
    {
        if (corpusFile is null)
        {
            if (vocabSize is not null) throw new CliInputException("--tokenizer-vocab-size needs --tokenizer-corpus.");
            List<string> tokens = [.. ByteLevelAlphabet.Characters.Select(c => c.ToString()), BosToken, EosToken];
            return new ByteLevelBpeModel(tokens, [], [BosToken, EosToken]);
        }

        var text = ModelLoading.ReadText(corpusFile, "Tokenizer corpus");
        var size = vocabSize ?? modelVocab;
        var clock = Stopwatch.StartNew();
        var model = new BpeTrainer(size, minFrequency: 2, specialTokens: [BosToken, EosToken]).Train([text]);
        logger.LogInformation("Trained a byte-level BPE tokenizer on {File}: {Tokens} tokens, {Merges} merges, in {Seconds:F1} s.",
            Path.GetFullPath(corpusFile), model.Tokens.Count, model.Merges.Count, clock.Elapsed.TotalSeconds);
        return model;
    }
}

/// <summary>The result of <c>create-random</c>.</summary>
internal sealed record CreateRandomResult(string Model, string Preset, string Dtype, long Seed, long Parameters, int Layers, int VocabSize,
    int TokenizerTokens, int TokenizerMerges, double Seconds);
