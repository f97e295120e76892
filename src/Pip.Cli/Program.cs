using Pip.Cli;

return await PipCli.RunAsync(args).ConfigureAwait(false);
