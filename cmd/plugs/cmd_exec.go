package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/task"
)

func newExecCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec PLUG[/INSTANCE]",
		Short: "Run a task plug once through the daemon and print its output",
		Long: `Run a task plug (one with a task {} or schedule {} block) once, through the
running daemon, with the instance's rendered config, params and secrets.

The input reaches the plugin on stdin and as the file named by PLUGS_INPUT.
Without -o json the plugin's output is printed as it wrote it, but for an
output that is one JSON document: that comes back compacted, on one line
(the task API carries it so); -o json prints the whole result indented,
that JSON included. A line on stderr says how the run ended unless it
succeeded. Exit 0: the run
succeeded; 1: it ran and failed (an exit code, a signal, the timeout) or the
call was wrong; 2: it could not run (busy, no daemon, not startable).

  plugs exec notify-sms --input request.json
  echo '{"to":"+4912345","text":"hi"}' | plugs exec notify-sms/default --input - -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := outputJSON(g)
			if err != nil {
				return err
			}
			plug, instance, _ := strings.Cut(args[0], "/")
			v := g.v
			if v.GetDuration("timeout") < 0 || v.GetInt("max-output") < 0 {
				return inputError(fmt.Errorf("--timeout and --max-output must not be negative (0: the task's default)"))
			}
			var input []byte
			switch in := v.GetString("input"); in {
			case "":
			case "-":
				input, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), task.MaxInput+1))
			default:
				input, err = os.ReadFile(in)
			}
			if err != nil {
				return inputError(fmt.Errorf("read input: %w", err))
			}
			c, err := dialTasks(g)
			if err != nil {
				return err
			}
			defer c.HTTP.CloseIdleConnections()
			ctx, cancel := interruptible(cmd.Context())
			defer cancel()
			res, err := c.Exec(ctx, plug, instance, input, task.ExecOptions{Timeout: v.GetDuration("timeout"), MaxOutput: v.GetInt("max-output")})
			if err != nil {
				return taskError(err)
			}
			if asJSON {
				if err := writeJSONOut(g.stdout, res); err != nil {
					return envError(err)
				}
			} else {
				out := res.Text()
				fmt.Fprint(g.stdout, out)
				if out != "" && !strings.HasSuffix(out, "\n") {
					fmt.Fprintln(g.stdout)
				}
				if res.OutputTruncated {
					fmt.Fprintf(g.stderr, "plugs: output cut at the cap (raise it with --max-output)\n")
				}
				if res.Result != task.ResultSuccess {
					if res.StderrTail != "" {
						fmt.Fprint(g.stderr, res.StderrTail)
					}
					fmt.Fprintf(g.stderr, "plugs: %s/%s %s%s after %s (run %s)\n", res.Plug, res.Instance, res.Result,
						exitText(res), time.Duration(res.Duration*float64(time.Second)).Round(time.Millisecond), res.RunID)
				}
			}
			switch res.Result {
			case task.ResultSuccess:
				return nil
			case task.ResultError:
				return silent(exitEnv)
			}
			return silent(exitInput)
		},
	}
	f := cmd.Flags()
	f.String("input", "", "the run's input: a file, or - for stdin (default: none)")
	f.Duration("timeout", 0, "end the run after this long (default: the task's timeout; at most its max_timeout)")
	f.Int("max-output", 0, "keep this many bytes of output (default: the task's output_limit; at most its max_output)")
	f.StringP("output", "o", "text", "output format: text (the plugin's output) or json (the whole result)")
	return cmd
}

func exitText(r *task.Result) string {
	switch {
	case r.OOMKilled:
		return " (" + r.Signal + ", oom-killed at its memory limit)"
	case r.Signal != "":
		return " (" + r.Signal + ")"
	case r.Error != "":
		return ": " + r.Error
	}
	return fmt.Sprintf(" (exit %d)", r.ExitCode)
}

func newRunsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs PLUG[/INSTANCE]",
		Short: "List the last runs of a task plug, newest first",
		Long: `List the last runs of a task plug (its history, kept in the state
directory), newest first: from the daemon, or from the state directory when
no daemon runs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := outputJSON(g)
			if err != nil {
				return err
			}
			plug, instance, _ := strings.Cut(args[0], "/")
			n := g.v.GetInt("limit")
			var runs []task.Result
			if c, derr := dialTasks(g); derr == nil {
				defer c.HTTP.CloseIdleConnections()
				if runs, err = c.Runs(cmd.Context(), plug, instance, n); err != nil {
					return taskError(err)
				}
			} else {
				all, err := task.ReadHistory(g.stateDir(), plug)
				if err != nil {
					return envError(fmt.Errorf("read the runs of %s: %w", plug, err))
				}
				for _, r := range all {
					if (instance == "" || r.Instance == instance) && (n <= 0 || len(runs) < n) {
						runs = append(runs, r)
					}
				}
			}
			if asJSON {
				if runs == nil {
					runs = []task.Result{}
				}
				return writeJSONOut(g.stdout, runs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tINSTANCE\tTRIGGER\tSTARTED\tDURATION\tRESULT\tEXIT")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.RunID, r.Instance, r.Trigger,
					r.StartedAt.Local().Format(time.DateTime), time.Duration(r.Duration*float64(time.Second)).Round(time.Millisecond),
					r.Result, r.ExitCode)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntP("limit", "n", 20, "show at most this many runs (0: all kept)")
	cmd.Flags().StringP("output", "o", "text", "output format: text or json")
	return cmd
}

// dialTasks is a task API client on the daemon's socket, or says how to
// start one.
func dialTasks(g *globals) (*task.Client, error) {
	c, err := api.Dial(g.stateDir())
	if err != nil {
		return nil, envError(fmt.Errorf("no plugs daemon answers on %s; start it with: plugs run -f %s", api.SocketPath(g.stateDir()), g.file()))
	}
	c.Close()
	return task.UnixClient(api.SocketPath(g.stateDir())), nil
}

// taskError maps a task API error to the exit codes: a wrong call or an
// unknown task is 1, busy and the environment 2.
func taskError(err error) error {
	var ae *task.APIError
	if errors.As(err, &ae) {
		switch ae.Kind {
		case "input", "not_found":
			return inputError(err)
		case "busy":
			return envError(fmt.Errorf("%w (retry after %ds)", err, ae.RetryAfter))
		}
	}
	return envError(err)
}
