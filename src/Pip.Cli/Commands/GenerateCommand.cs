using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pip.Cli.Infrastructure;
using Pip.Torch.Models;

namespace Pip.Cli.Commands;

/// <summary><c>generate</c>: greedy continuation of a prompt.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var prompt = new Option<string>("--prompt", "-p") { Description = "The prompt text.", Required = true, HelpName = "TEXT" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "The most tokens to generate (generation also stops at the EOS token).", DefaultValueFactory = _ => 32, HelpName = "N" }.AtLeast(0);
        var dtype = CommonOptions.Dtype("The type to compute in (default: the checkpoint's torch_dtype).");
        var device = CommonOptions.Device();
        var json = CommonOptions.Json();

        var command = new Command("generate", "Continue a prompt with greedy decoding and print the prompt and its continuation.")
        {
            model, prompt, maxNew, dtype, device, CommonOptions.AllowNonFinite(), json,
        };
        CommandRunner.SetBody(command, context, run =>
        {
            using var lm = ModelLoading.Load(run, ModelLoading.ModelFolderOrDefault(run.Get(model), context), run.Get(dtype), run.Require(device));
            var tokenizer = ModelLoading.RequireTokenizer(lm);
            var text = run.Require(prompt);
            var ids = tokenizer.Encode(text);
            if (ids.Length == 0) throw new CliInputException("The prompt gives no tokens; pass a non-empty --prompt.");
            var outside = ids.FirstOrDefault(t => t < 0 || t >= lm.ModelConfig.VocabSize, -1);
            if (outside >= 0)
                throw new CliInputException($"Model folder '{lm.SourceFolder}': its tokenizer gives token id {outside}, outside the model's vocabulary of {lm.ModelConfig.VocabSize}.");
            var eos = tokenizer.EosTokenId ?? (lm.ModelConfig.EosTokenIds.Count > 0 ? lm.ModelConfig.EosTokenIds[0] : null);

            var clock = Stopwatch.StartNew();
            var generated = lm.Model.Generate(ids, run.Require(maxNew), eos, run.CancellationToken);
            var seconds = clock.Elapsed.TotalSeconds;
            var completion = tokenizer.Decode(generated);
            var stoppedAtEos = generated.Length > 0 && generated[^1] == eos;
            run.Logger.LogInformation("Generated {Count} tokens in {Seconds:F2} s ({Rate:F1} tokens/s){Eos}.",
                generated.Length, seconds, generated.Length / Math.Max(seconds, 1e-9), stoppedAtEos ? ", stopped at EOS" : "");

            if (run.Get(json))
            {
                ResultWriter.WriteJson(run.Out, new GenerateResult(lm.SourceFolder!, text, completion, ids.Length, generated, stoppedAtEos,
                    Math.Round(seconds, 3), Math.Round(generated.Length / Math.Max(seconds, 1e-9), 1)));
            }
            else
            {
                run.Out.WriteLine(text + completion);
                run.Out.Flush();
            }
            return ExitCodes.Success;
        });
        return command;
    }
}

/// <summary>The result of <c>generate</c>.</summary>
internal sealed record GenerateResult(string Model, string Prompt, string Completion, int PromptTokens, IReadOnlyList<int> GeneratedTokens,
    bool StoppedAtEos, double Seconds, double TokensPerSecond);
